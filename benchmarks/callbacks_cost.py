"""What callbacks cost on the seed workload W1 (issue 3's speed targets).

Variants, interleaved per repeat, `epochs` epochs per `fit` call (10 by default: the cost of per-epoch
checkpoints in a training run; a 1-epoch fit pays its one checkpoint in full, since `fit` returns only when
the file is on disk), median over repeats of the time per epoch:
    none      fit(verbose=0), no callbacks
    standard  History + ModelCheckpoint (every epoch) + EarlyStopping(monitor='loss') + CSVLogger
    verbose1  verbose=1 with stdout sent to a file
    batchhook a callback whose on_batch_end only counts
The batch-hook cost per batch is (batchhook - none) / batches minus what the hook body itself costs when
called directly from Python; that is the price of the GIL round trip and the batch `logs`. Costs are paired:
each round runs every variant back to back, its cost is taken against that round's `none`, and the median
over rounds is reported (the machine's speed drifts between rounds more than these costs).
"""
import contextlib
import os
import statistics
import tempfile
import time

from .engines import FastfitTrainer
from .workloads import WORKLOADS, make_data, steps_per_epoch

VARIANTS = ("none", "standard", "verbose1", "batchhook")


def _counter_callback():
    from fastfit.callbacks import Callback

    class BatchCounter(Callback):
        """Does nothing but count `on_batch_end` calls."""

        def __init__(self):
            super().__init__()
            self.calls = 0

        def on_batch_end(self, batch, logs=None):
            self.calls += 1

    return BatchCounter()


def _hook_self_seconds(callback, calls=200000):
    """Seconds one direct Python call of the hook body costs (with a small logs dict)."""
    logs = {"batch": 0, "size": 128, "loss": 0.5, "acc": 0.5}
    t0 = time.perf_counter()
    for i in range(calls):
        callback.on_batch_end(i, logs)
    return (time.perf_counter() - t0) / calls


def run(samples, repeats, engine="cython", seed=0, epochs=10):
    """Worker side: measure every variant on W1.

    Arguments:
        samples: rows of synthetic data.
        repeats: timed fits per variant.
        engine: fastfit engine ('cython' or 'python').
        seed: data seed.
        epochs: epochs per fit.

    Returns:
        dict with per-variant `times`/`median_s`, `standard_pct`, `verbose1_pct`, `batch_hook_us`,
        `hook_self_us`, `batches_per_epoch`, `epochs_per_fit` and the hook's call count (to show it ran).
    """
    from fastfit.callbacks import CSVLogger, EarlyStopping, History, ModelCheckpoint

    workload = WORKLOADS["w1"]
    x, y, y_int = make_data(samples, seed)
    trainer = FastfitTrainer(workload, {"x": x, "y": y, "y_int": y_int}, engine=engine)
    counter = _counter_callback()
    times = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp, open(os.path.join(tmp, "stdout.txt"), "w") as sink:
        def standard():
            return [History(), ModelCheckpoint(os.path.join(tmp, "ckpt.h5")),
                    EarlyStopping(monitor="loss", patience=3), CSVLogger(os.path.join(tmp, "log.csv"))]

        def fit(variant):
            if variant == "none":
                return trainer.epoch(epochs=epochs)
            if variant == "standard":
                return trainer.epoch(epochs=epochs, callbacks=standard())
            if variant == "verbose1":
                with contextlib.redirect_stdout(sink):
                    return trainer.epoch(epochs=epochs, verbose=1)
            return trainer.epoch(epochs=epochs, callbacks=[counter])

        for variant in VARIANTS:          # warm-up: first save, first file open, imports
            fit(variant)
        counter.calls = 0
        for r in range(repeats):
            for variant in VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]:
                t0 = time.perf_counter()
                history = fit(variant)
                # per epoch actually run (EarlyStopping may end a fit early)
                times[variant].append((time.perf_counter() - t0) / max(len(history.epoch), 1))
    med = {v: statistics.median(t) for v, t in times.items()}
    batches = steps_per_epoch(workload, samples)
    hook_self = _hook_self_seconds(counter)

    def paired(variant, per):
        return statistics.median(per(t, base) for t, base in zip(times[variant], times["none"]))
    return {
        "engine": engine,
        "samples": samples,
        "batches_per_epoch": batches,
        "epochs_per_fit": epochs,
        "variants": {v: {"times": times[v], "median_s": med[v]} for v in VARIANTS},
        "standard_pct": 100.0 * paired("standard", lambda t, base: t / base - 1.0),
        "verbose1_pct": 100.0 * paired("verbose1", lambda t, base: t / base - 1.0),
        "batch_hook_us": (paired("batchhook", lambda t, base: (t - base) / batches) - hook_self) * 1e6,
        "hook_self_us": hook_self * 1e6,
        "hook_calls": counter.calls,
        "hook_calls_expected": batches * repeats * epochs,
    }
