"""What callbacks cost on the seed workload W1 (issue 3's speed targets), measured inside one fit.

Comparing whole fits with and without callbacks measured this machine's drift (whole fits moved by 5-10%
from one to the next) more than the callbacks (a few %). So each variant is measured inside a single
`fit`: the callbacks under test are switched on and off from epoch to epoch, and epochs with them are
compared with their neighbours without them. A variant's fit runs in blocks of 4 epochs, alternately
[on, after, off, off] and [off, off, on, after]; "after" is the epoch that follows an "on" epoch with the
callbacks off again, because the checkpoint of epoch e is written behind, during epoch e + 1. The cost of a
block is (on + after) - (off + off), and the median over blocks is reported.

Variants:
    null      a callback whose on_epoch_end does nothing: the noise floor of the method
    standard  ModelCheckpoint (every epoch) + EarlyStopping(monitor='loss') + CSVLogger (History is always on)
    verbose1  the ProgbarLogger that `fit(verbose=1)` adds, printing to a file
    batchhook a callback whose on_batch_end only counts

The spread of the block costs is printed with each median: on this machine an epoch's time moves by 5-10%
from one epoch to the next, so a median of 1-2% needs many blocks. The time spent inside the switched
callbacks' epoch hooks is also timed directly (it does not include a checkpoint written behind).
The batch hook is also timed on a tiny model whose batches leave the caches warm: the floor of its round
trip.

An epoch's time runs from one epoch begin to the next (so it includes the epoch-end work of every
callback). The batch-hook cost per batch is the block cost divided by the batches of one epoch, minus what
the hook body itself costs when called directly from Python: that is the price of the GIL round trip and
the batch `logs`.
"""
import contextlib
import os
import statistics
import tempfile
import time

from .engines import FastfitTrainer
from .workloads import WORKLOADS, make_data, steps_per_epoch

VARIANTS = ("null", "standard", "verbose1", "batchhook")
# The hooks a switched-on callback exposes (as attributes of its `_Switch`).
_EXPOSED = ("on_epoch_begin", "on_epoch_end", "on_batch_begin", "on_batch_end", "on_train_batch_begin",
            "on_train_batch_end", "on_train_batch_means", "batch_end_interval", "batch_hooks_needed")


def _callback_classes():
    from fastfit.callbacks import Callback

    class Switch(Callback):
        """Wraps a callback; it sees train begin/end always, every other hook only while switched on.

        Switched on, the wrapped callback's hooks become attributes of this instance, so the engine sees
        exactly the batch hooks (and throttling) the callback itself declares; off, none.
        """

        # A harness callback, not user code: it reads no checkpoint, so the checkpoint writer treats it like
        # fastfit's built-ins and the standard set is timed as users listing it get it (docs/callbacks.md).
        _runs_no_user_code = True

        def __init__(self, inner, params_override=None):
            super().__init__()
            self.inner = inner
            self._override = params_override or {}

        def set_model(self, model):
            super().set_model(model)
            self.inner.set_model(model)

        def set_params(self, params):
            super().set_params(params)
            self.inner.set_params({**params, **self._override})

        def on_train_begin(self, logs=None):
            self.inner.on_train_begin(logs)

        def on_train_end(self, logs=None):
            self.inner.on_train_end(logs)

        def switch(self, on):
            for name in _EXPOSED:
                if on and name in _own_names(self.inner):
                    setattr(self, name, getattr(self.inner, name))
                else:
                    self.__dict__.pop(name, None)

    class BatchCounter(Callback):
        """Counts `on_batch_end` calls; the hook is an instance attribute so that it can be switched."""

        def __init__(self):
            super().__init__()
            self.calls = 0

        def count(self, batch, logs=None):
            self.calls += 1

    class EpochClock(Callback):
        """First in the list: switches the variant's callbacks for each epoch and times the epochs.

        With its `HooksEnd` last in the list, it also times the switched callbacks' epoch hooks, from its own
        hook to the end's (two clock reads per hook, not a wrapper per callback: the timing itself should not
        add to the cost it measures).
        """

        # A harness callback, not user code: it reads no checkpoint, so the checkpoint writer treats it like
        # fastfit's built-ins and the standard set is timed as users listing it get it (docs/callbacks.md).
        _runs_no_user_code = True

        def __init__(self, switches, schedule):
            super().__init__()
            self.switches, self.schedule, self.starts = switches, schedule, []
            self.seconds = 0.0   # spent in the switched callbacks' epoch hooks, on the training thread
            self._mark = None

        def on_epoch_begin(self, epoch, logs=None):
            self.starts.append(time.perf_counter())
            for switch in self.switches:
                switch(self.schedule[epoch] == "on")
            if self.schedule[epoch] == "on":
                self._mark = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if self.schedule[epoch] == "on":
                self._mark = time.perf_counter()

        def close_mark(self):
            if self._mark is not None:
                self.seconds += time.perf_counter() - self._mark
                self._mark = None

        def on_train_end(self, logs=None):
            self.starts.append(time.perf_counter())

    class HooksEnd(Callback):
        """Last in the list: ends the `EpochClock`'s timing of the epoch hooks between them."""

        # A harness callback, not user code: it reads no checkpoint, so the checkpoint writer treats it like
        # fastfit's built-ins and the standard set is timed as users listing it get it (docs/callbacks.md).
        _runs_no_user_code = True

        def __init__(self, clock):
            super().__init__()
            self.clock = clock

        def on_epoch_begin(self, epoch, logs=None):
            self.clock.close_mark()

        def on_epoch_end(self, epoch, logs=None):
            self.clock.close_mark()

    class Nothing(Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    return Switch, BatchCounter, EpochClock, Nothing, HooksEnd


def _own_names(callback):
    """The hooks `callback` implements itself (not the `Callback` base class's no-ops), and its attributes."""
    from fastfit.callbacks import Callback
    names = set(vars(callback))
    for klass in type(callback).__mro__:
        if klass is Callback:
            break
        names.update(vars(klass))
    if hasattr(callback, "batch_end_interval"):
        names.add("batch_end_interval")
    return names


def _schedule(blocks):
    """Per epoch 'on', 'after' or 'off': blocks alternately [on, after, off, off] and [off, off, on, after]."""
    out = []
    for b in range(blocks):
        out += ["on", "after", "off", "off"] if b % 2 == 0 else ["off", "off", "on", "after"]
    return out


def _block_costs(starts, schedule):
    """Per block: (seconds of its on + after epochs - seconds of its off epochs, mean seconds of an off epoch)."""
    epochs = [b - a for a, b in zip(starts[:-1], starts[1:])]
    costs = []
    for k in range(0, len(schedule) - 3, 4):
        with_cb = sum(t for t, s in zip(epochs[k:k + 4], schedule[k:k + 4]) if s != "off")
        without = sum(t for t, s in zip(epochs[k:k + 4], schedule[k:k + 4]) if s == "off")
        costs.append((with_cb - without, without / 2))
    return costs


def _hook_self_seconds(callback, calls=200000):
    """Seconds one direct Python call of the hook body costs (with a small logs dict)."""
    logs = {"batch": 0, "size": 128, "loss": 0.5, "acc": 0.5}
    t0 = time.perf_counter()
    for i in range(calls):
        callback.count(i, logs)
    return (time.perf_counter() - t0) / calls


def _warm_hook_seconds(callback, engine, pairs=7, rows=20000, batch_size=16):
    """Seconds per batch an on_batch_end callback adds on a tiny model, whose batches leave the caches warm.

    The floor of the round trip (GIL, logs, dispatch): on W1 every batch streams 400 KB of x through the
    caches first, so the same Python then runs several times slower. Median of `pairs` fits with and without
    the callback, alternated.
    """
    import numpy as np
    import fastfit
    rng = np.random.default_rng(0)
    x = rng.random((rows, 8), dtype=np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, rows)]
    model = fastfit.models.Sequential([fastfit.layers.Dense(2, input_dim=8, activation="softmax")])
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"], engine=engine)
    fit = dict(batch_size=batch_size, epochs=1, verbose=0)
    model.fit(x, y, **fit)
    callback.on_batch_end = callback.count
    costs = []
    for _ in range(pairs):
        t0 = time.perf_counter()
        model.fit(x, y, **fit)
        t1 = time.perf_counter()
        model.fit(x, y, callbacks=[callback], **fit)
        costs.append((time.perf_counter() - t1) - (t1 - t0))
    del callback.on_batch_end
    return statistics.median(costs) / -(-rows // batch_size)


def run(samples, repeats, engine="cython", seed=0, blocks=None):
    """Worker side: measure every variant on W1.

    Arguments:
        samples: rows of synthetic data.
        repeats: sets the number of 4-epoch blocks per variant (`blocks`, default 6 * repeats; three times
            that for the two variants with targets, `standard` and `batchhook`).
        engine: fastfit engine ('cython' or 'python').
        seed: data seed.

    Returns:
        dict with per-variant `block_costs_s`, `epoch_s` (median off epoch), `pct` (median block cost
        over an off epoch), `pct_quartiles` and `in_hooks_ms_per_epoch` (time inside the switched
        callbacks' epoch hooks per "on" epoch), then `null_pct`, `standard_pct`, `verbose1_pct`, `batch_hook_us`,
        `batch_hook_warm_us` (on a tiny model), `hook_self_us`,
        `batches_per_epoch`, `blocks` and the hook's call count (to show it ran).
    """
    from fastfit.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint, ProgbarLogger

    Switch, BatchCounter, EpochClock, Nothing, HooksEnd = _callback_classes()
    blocks = blocks or max(6 * repeats, 2)
    workload = WORKLOADS["w1"]
    x, y, y_int = make_data(samples, seed)
    trainer = FastfitTrainer(workload, {"x": x, "y": y, "y_int": y_int}, engine=engine)
    batches = steps_per_epoch(workload, samples)
    counter = BatchCounter()
    # The variants with targets get three times the blocks: a median of 1-2 % (or 2 us) needs them.
    variant_blocks = {v: blocks * (3 if v in ("standard", "batchhook") else 1) for v in VARIANTS}
    schedules = {v: _schedule(n) for v, n in variant_blocks.items()}
    results = {}
    with tempfile.TemporaryDirectory() as tmp, open(os.path.join(tmp, "stdout.txt"), "w") as sink:
        def timed(clock, wrapped):
            return [clock] + wrapped + [HooksEnd(clock)]

        def switched(variant):
            """The callbacks of one fit (clock first) for `variant`."""
            schedule = schedules[variant]
            if variant == "null":
                wrapped = [Switch(Nothing())]
                return timed(EpochClock([w.switch for w in wrapped], schedule), wrapped)
            if variant == "standard":
                # patience: keep the fit going for every block (EarlyStopping's cost is the same)
                inner = [ModelCheckpoint(os.path.join(tmp, "ckpt.h5")),
                         EarlyStopping(monitor="loss", patience=10 ** 9),
                         CSVLogger(os.path.join(tmp, "log.csv"))]
                wrapped = [Switch(cb) for cb in inner]
                return timed(EpochClock([w.switch for w in wrapped], schedule), wrapped)
            if variant == "verbose1":
                wrapped = Switch(ProgbarLogger(count_mode="samples"), {"verbose": 1})
                return timed(EpochClock([wrapped.switch], schedule), [wrapped])

            def hook_switch(on):
                if on:
                    counter.on_batch_end = counter.count
                else:
                    counter.__dict__.pop("on_batch_end", None)
            return [EpochClock([hook_switch], schedule), counter]

        trainer.epoch(epochs=2)                      # warm-up: imports, first allocations
        for variant in VARIANTS:
            trainer.epoch(epochs=4, callbacks=switched(variant))   # warm-up: first save, first file open
        counter.calls = 0
        for variant in VARIANTS:
            callbacks = switched(variant)
            with contextlib.redirect_stdout(sink):
                trainer.epoch(epochs=len(schedules[variant]), callbacks=callbacks)
            costs = _block_costs(callbacks[0].starts, schedules[variant])
            pcts = sorted(100.0 * c / e for c, e in costs)
            inside = callbacks[0].seconds
            results[variant] = {"block_costs_s": [c for c, _ in costs],
                                "epoch_s": statistics.median(e for _, e in costs),
                                "pct": statistics.median(pcts),
                                "pct_quartiles": (pcts[len(pcts) // 4], pcts[(3 * len(pcts)) // 4]),
                                "in_hooks_ms_per_epoch": 1e3 * inside / variant_blocks[variant],
                                "blocks": variant_blocks[variant]}
    hook_self = _hook_self_seconds(counter)
    hook_cost = statistics.median(results["batchhook"]["block_costs_s"]) / batches
    warm_hook = _warm_hook_seconds(BatchCounter(), engine)
    return {
        "engine": engine,
        "samples": samples,
        "batches_per_epoch": batches,
        "blocks": blocks,
        "variants": results,
        "null_pct": results["null"]["pct"],
        "standard_pct": results["standard"]["pct"],
        "verbose1_pct": results["verbose1"]["pct"],
        "batch_hook_us": (hook_cost - hook_self) * 1e6,
        "hook_self_us": hook_self * 1e6,
        "batch_hook_warm_us": (warm_hook - hook_self) * 1e6,
        "hook_calls": counter.calls,
        "hook_calls_expected": batches * variant_blocks["batchhook"],
    }
