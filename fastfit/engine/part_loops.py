"""The loops of `fit`/`evaluate`/`predict` over *parts*: successive engine calls that together make one epoch
or pass (a group of generator batches, or one buffer of rows read from disk; `fastfit.engine.streaming` and
`fastfit.engine.streams` make the parts). Each part runs through the engine's own epoch function
(`train_epoch`/`evaluate`/`predict`, without the GIL in the compiled engine).

What stays true across parts, so callbacks cannot tell the difference from one array:
- batch indices continue from part to part, and the throttled running means of the progress bar include the
  earlier parts (`ContinuedHook`);
- the epoch logs are the sample-weighted means of the whole epoch; parts of whole batches accumulate them in
  the engine's own order, so a `Sequence` serving the batches of an array fit gives that fit's bits;
- the confusion counts of the metric objects (`Readout`) cover the whole pass: the engine zeroes them at
  each call, so `PassCounts` carries the counts of the finished calls;
- a pass whose engine call fell back to one thread (a core was busy) runs its remaining calls on one thread,
  as the rest of one engine call over the pass would (`OneThreadAfterFallback`; same blocks, same bits).
"""
import math
import time
import warnings

import numpy as np

from fastfit.callbacks.callback_list import CallbackList
from fastfit.callbacks.history import History
from fastfit.callbacks.hooks import make_batch_hook
from fastfit.callbacks.progbar import ProgbarLogger
from fastfit.core import resolve_core
from fastfit.engine import loop_helpers, lowering
from fastfit.engine.logs import Logs


# -- the hook bridge ------------------------------------------------------------------------------------------
class ContinuedHook:
    """Wraps the `BatchHook` of one epoch (or one evaluate/predict; None when no callback listens) so that
    engine calls over successive parts look like one call: batch indices continue, the running sums behind
    throttled means include the earlier parts (train/test), and throttled callbacks are still called at most
    every `end_interval` seconds plus on `final_batch` (predict hooks are made per part, with that part's
    outputs).

    `exact=True` (generator and Sequence parts): the engine calls back after every batch and this object
    adds the batch into `sums` ([seen, loss sum, metric sums...]) with the engine's own operations, in batch
    order, so the epoch's sums are those of one engine call over all its batches, bit for bit.

    `metric_pass` (a model with custom metrics): the pass the wrapped hook updates; `start_part` binds each
    part's targets to it before the part's engine call, and `predictions` is the array that call fills.
    """

    def __init__(self, hook, metric_count, model=None, exact=False, metric_pass=None):
        self._hook = hook
        self._pass = metric_pass
        self.predictions = None
        self._interval = 0.0 if hook is None else hook.end_interval
        self.batch_begin = hook is not None and hook.batch_begin
        self.batch_end = exact or (hook is not None and hook.batch_end)
        # the engine throttles inside a part, this object across parts
        self.end_interval = 0.0 if exact else self._interval
        self.end_calls = None
        self._count = metric_count
        self._model = model
        self._carried = None
        self._last_end = time.monotonic()
        self.batch_offset = 0
        self.final_batch = None
        self.sums = [0.0] * (metric_count + 1) if exact else None

    def __call__(self, phase, batch, size, stats):
        batch = int(batch) + self.batch_offset
        if phase and self.sums is not None:
            sums = self.sums
            sums[0] += size
            for index in range(self._count):
                sums[index + 1] += stats.item(index) * size
        if self._hook is None or phase and not self._hook.batch_end:
            return phase and self._stop()
        if phase and self._interval > 0:
            now = time.monotonic()
            if batch != self.final_batch and now - self._last_end < self._interval:
                return self._stop()
            self._last_end = now
        if self.sums is not None:
            stats = np.concatenate([stats[:self._count], self.sums])
        elif self._carried is not None:
            stats = stats.copy()
            stats[self._count:] += self._carried
        return self._hook(phase, batch, size, stats)

    def _stop(self):
        return self._model is not None and bool(self._model.stop_training)

    def start_part(self, y, order, batch_size):
        """Before a part's engine call: its targets, row order (None: row order) and batch size go to the
        custom metrics (nothing to do without them)."""
        if self._pass is not None:
            self._pass.bind(y, order, batch_size, self.batch_offset)
            self.predictions = self._pass.predictions

    def advance(self, batches, sums=None):
        """Account for a finished part of `batches` batches (and its sums, train/test)."""
        self.batch_offset += batches
        if sums is not None:
            self._carried = sums.copy() if self._carried is None else self._carried + sums


def relay(hook, metric_count, model=None, exact=False, metric_pass=None):
    return ContinuedHook(hook, metric_count, model, exact, metric_pass) if hook is not None or exact else None


class PassCounts:
    """The confusion counts (threshold histograms of the metric objects) of one pass run as several engine
    calls. The engine zeroes its `confusion_counts` at the start of each call, so the counts of the finished
    calls are carried: while the pass runs, `readout.counts` is this object (carried + the running call's);
    `finish` leaves the pass's total in `readout.counts`, where `metric.result()` reads it afterwards.
    Call `before_part` before each engine call."""

    def __init__(self, readout, network):
        self._readout = readout
        self._live = getattr(network, "confusion_counts", None)
        self._carried = None
        self._parts = 0
        if readout.confusion and self._live is not None:
            self._carried = np.zeros_like(self._live)
            readout.counts = self

    def before_part(self):
        if self._carried is not None and self._parts:
            self._carried += self._live  # the previous call's counts, before this call zeroes them
        self._parts += 1

    def __getitem__(self, where):
        return self._carried[where] + self._live[where]

    def finish(self):
        if self._carried is not None:
            self._readout.counts = self._carried + self._live if self._parts else self._carried


class OneThreadAfterFallback:
    """The compiled engine drops a call to one thread when its second thread keeps waiting for a core; each
    new call starts with two threads again. Over a pass cut into parts this keeps the fallback until the pass
    ends, as it lasts until the end of one engine call over the whole pass: after a call that ran on one
    thread, the network's `serial` flag runs the same row blocks one after the other (the same bits).
    `finish` puts the flag back. Networks without the flag (the NumPy engine) are left alone."""

    def __init__(self, network):
        self._network = network
        self._before = getattr(network, "serial", None)

    def after_part(self):
        if self._before is not None and self._network.threads == 1:
            self._network.serial = True

    def finish(self):
        if self._before is not None:
            self._network.serial = self._before


def stat_count(model):
    """The number of per-batch stats the engine computes (loss and the engine-computed metrics)."""
    return len(model._readout.stat_keys)


# -- the loops ------------------------------------------------------------------------------------------------
def train(model, feed, validate, val_for_callbacks, callbacks, epochs, verbose, initial_epoch, validation_epochs,
          params, count_mode, runs_user_code):
    """The fit loop over `feed.train_parts(epoch, skip)` (same callbacks, logs, resume and checkpoint rule as
    `_fit_loop`).

    Arguments:
        validate: None, or a function (callback list, training batch size) -> {metric key: mean}.
        params: the callbacks' params without 'metrics' and 'do_validation'.
        runs_user_code: whether user code runs during the fit besides the callbacks (a generator, a Sequence,
            an HDF5Matrix normalizer): then every checkpoint is complete when its hook returns.
    """
    with model._fit_scope(callbacks, runs_user_code):  # as `Model.fit`
        return _train_loop(model, feed, validate, val_for_callbacks, callbacks, epochs, verbose, initial_epoch,
                           validation_epochs, params, count_mode)


def _train_loop(model, feed, validate, val_for_callbacks, callbacks, epochs, verbose, initial_epoch,
                validation_epochs, params, count_mode):
    net = model._train_network()
    model.history = History()
    listed = list(callbacks)
    progbar = [] if not verbose or any(isinstance(cb, ProgbarLogger) for cb in listed) else \
        [ProgbarLogger(count_mode=count_mode)]
    cbks = CallbackList(progbar + listed + [model.history])
    keys = model.metrics_names
    params = dict(params, epochs=epochs, verbose=verbose, do_validation=validate is not None,
                  metrics=keys + (["val_" + k for k in keys] if validate is not None else []))
    cbks.set_validation_data(val_for_callbacks)
    cbks.set_model(model)
    cbks.set_params(params)
    model.stop_training = False
    cbks.on_train_begin({})
    start_epoch, skip_batches = loop_helpers.resume_point(cbks, initial_epoch)
    if (start_epoch, skip_batches) != (initial_epoch, 0):
        model._invalidate()  # a restored backup may carry other dropout seeds: rebuild the engine network
        net = model._train_network()
    steps = params.get("steps")
    epoch_logs = Logs()
    try:
        for epoch in range(start_epoch, epochs):
            cbks.on_epoch_begin(epoch, {})
            skip = skip_batches if epoch == start_epoch else 0
            exact = getattr(feed, "exact_sums", False)
            metric_pass = model._metric_pass(None, None, 1)  # each part binds its targets (start_part)
            hook = relay(make_batch_hook(cbks, "train", keys, model, metric_pass=metric_pass,
                                         readout=model._readout), stat_count(model), model, exact, metric_pass)
            if hook is not None and steps:
                hook.final_batch = steps - 1 - skip
            sums, batches, first_bad, completed = None, 0, None, False
            counts = PassCounts(model._readout, net)
            threads = OneThreadAfterFallback(net)
            parts = feed.train_parts(epoch, skip)
            try:
                for x, y, weights, order, batch_size in parts:
                    counts.before_part()
                    if hook is not None:
                        hook.start_part(y, order, batch_size)
                    part = net.train_epoch(x, y, weights, order, batch_size, model.optimizer, hook)
                    threads.after_part()
                    done = -(-int(part[0]) // batch_size)
                    if first_bad is None and net.first_nonfinite_batch is not None:
                        first_bad = batches + net.first_nonfinite_batch + skip
                    sums = part if sums is None else sums + part
                    batches += done
                    if hook is not None:
                        hook.advance(done, part)
                    if model.stop_training:
                        break
                else:
                    completed = True
            finally:
                parts.close()
                counts.finish()
                threads.finish()
            if exact and sums is not None:
                sums = np.array(hook.sums)  # batch by batch, as one engine call over the epoch adds them
            ran_out = feed.exhausted and (sums is None or steps is not None)
            if ran_out:
                warnings.warn("Your input ran out of data; interrupting training. Make sure that your generator "
                              "can generate at least `steps_per_epoch * epochs` batches.", RuntimeWarning,
                              stacklevel=4)
                model.stop_training = True
                if sums is None:
                    break
            epoch_logs = Logs() if sums is None else loop_helpers.logs_from_sums(model._readout, sums, metric_pass)
            finished = not ran_out and (completed or batches + skip == steps)
            if finished and not math.isfinite(epoch_logs.get("loss", 0.0)):
                where = "" if first_bad is None else f" at batch {first_bad}"
                warnings.warn(f"Epoch {epoch + 1}: the training loss became {epoch_logs['loss']} (NaN or "
                              f"infinite){where}; add fastfit.callbacks.TerminateOnNaN() to stop at the first "
                              "such batch", RuntimeWarning, stacklevel=4)
            if finished and validate is not None and (epoch + 1) in validation_epochs:
                results = validate(cbks, feed.last_batch_size)
                epoch_logs.update(("val_" + k, v) for k, v in results.items())
            cbks.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
    except KeyboardInterrupt:
        cbks.on_train_end(Logs(epoch_logs))
        raise  # any other exception skips on_train_end, as in Keras (`during_fit` waits for the checkpoints)
    cbks.on_train_end(Logs(epoch_logs))
    return model.history


def evaluate_parts(model, parts, cbks, exact=False):
    """Run the test loop over `parts` ((x, y, w, batch_size) tuples) with `cbks`' test hooks; return
    {metric key: mean}.

    Raises:
        ValueError: the parts held no batch.
    """
    net = model._train_network()
    keys = model.metrics_names
    cbks.on_test_begin({})
    metric_pass = model._metric_pass(None, None, 1)  # each part binds its targets (start_part)
    hook = relay(make_batch_hook(cbks, "test", keys, model, metric_pass=metric_pass, readout=model._readout),
                 stat_count(model), None, exact, metric_pass)
    sums = None
    counts = PassCounts(model._readout, net)
    threads = OneThreadAfterFallback(net)
    try:
        for x, y, weights, batch_size in parts:
            counts.before_part()
            if hook is not None:
                hook.start_part(y, None, batch_size)
            # As `Model.evaluate` does: forward blocks where no hook needs the batches and no zero weight
            # makes the batching matter (so data that fits one buffer gives the in-memory bits).
            rows = batch_size
            if hook is None and (weights is None or np.count_nonzero(weights) == len(weights)):
                rows = lowering.forward_block(model, batch_size, x.dtype)
            part = net.evaluate(x, y, weights, rows, hook)
            threads.after_part()
            sums = part if sums is None else sums + part
            if hook is not None:
                hook.advance(-(-len(x) // batch_size), part)
    finally:
        parts.close()
        counts.finish()
        threads.finish()
    if sums is None:
        raise ValueError("evaluate: the data served no batches")
    if exact:
        sums = np.array(hook.sums)
    results = loop_helpers.logs_from_sums(model._readout, sums, metric_pass)
    cbks.on_test_end(Logs(results))
    return results


def predict_parts(model, parts, cbks, total=None):
    """Run predict over `parts` ((x, batch_size) pairs); return the output (or list of outputs). With
    `total`, the outputs are allocated once for `total` rows and each part writes its rows."""
    engine = model._core or resolve_core(None)
    tensors = model.outputs
    nets = [lowering.core_network(model, engine, "mean_squared_error", [], index) for index in range(len(tensors))]
    widths = [int(np.prod(t.shape[1:])) for t in tensors]
    dtype = model._dtype()
    single = len(tensors) == 1
    cbks.on_predict_begin({})
    pieces = [[] for _ in tensors]
    outputs = None if total is None else [np.empty((total, w), dtype) for w in widths]
    batch = 0
    row = 0
    try:
        for x, size in parts:
            if outputs is None:
                outs = [np.empty((len(x), w), dtype) for w in widths]
                for out, piece in zip(outs, pieces):
                    piece.append(out)
            else:
                outs = [out[row:row + len(x)] for out in outputs]
            for net, out in zip(nets, outs):
                hook = None
                if single:
                    hook = relay(make_batch_hook(cbks, "predict", [], model, out=out), 0)
                    if hook is not None:
                        hook.batch_offset = batch
                # as `Model.predict`: forward blocks where no hook needs the user's batches
                net.predict(x, size if hook is not None else lowering.forward_block(model, size, dtype), out, hook)
            if not single:
                for k, start in enumerate(range(0, len(x), size)):
                    logs = {"batch": batch + k, "size": min(size, len(x) - start)}
                    cbks.on_predict_batch_begin(batch + k, logs)
                    cbks.on_predict_batch_end(batch + k, dict(logs, outputs=[o[start:start + size] for o in outs]))
            batch += -(-len(x) // size)
            row += len(x)
    finally:
        parts.close()
    if outputs is None:
        if not pieces[0]:
            raise ValueError("predict: the data served no batches")
        outputs = [np.concatenate(piece) if len(piece) > 1 else piece[0] for piece in pieces]
    cbks.on_predict_end({})
    shaped = [out.reshape((len(out),) + tuple(t.shape[1:])) for out, t in zip(outputs, tensors)]
    return shaped[0] if model._single_output else shaped


def evaluate_result(results, names, return_dict):
    """What `evaluate` returns: `{name: value}` (return_dict), the loss alone, or `[loss, *metrics]`."""
    if return_dict:
        return {k: results[k] for k in names}
    values = [results[k] for k in names]
    return values[0] if len(values) == 1 else values


def short(value):
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


_IDENTITY: dict[int, np.ndarray] = {}


def identity(size):
    """`arange(size)` as int64 (cached: generator batches share their few sizes)."""
    order = _IDENTITY.get(size)
    if order is None:
        order = _IDENTITY[size] = np.arange(size, dtype=np.int64)
    return order
