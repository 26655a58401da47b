"""The bridge between the engines' batch hook (docs/architecture.md, "Hooks") and a `CallbackList`.

`make_batch_hook` returns `None` when no callback listens to the batch hooks of a mode, so the engine runs
the whole epoch without taking the GIL. Otherwise it returns a `BatchHook`, which turns the engine's `stats`
array into Keras 2.2 batch logs (plain Python ints and floats) and calls only the callbacks that implement
the hook.

Throttling: a callback that only needs an occasional look at the running epoch means (the progress bar)
declares a positive `batch_end_interval` and an `on_<mode>_batch_means(batch, logs)` method. When it is the
only one listening to batch ends, the engine calls back at most every `batch_end_interval` seconds (and on
the last batch), and it receives `{'batch', 'seen', <key>: running epoch mean}` computed from the engine's
running sums. When any other callback needs every batch end, every batch is dispatched with per-batch values
to everyone, the throttled callback included.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from fastfit.callbacks.base import Callback, batch_hooks_needed, check_hook_mode, overrides
from fastfit.engine.logs import Logs


def _throttled(callback, mode):
    """True when `callback` accepts throttled running means instead of every batch end."""
    interval = getattr(callback, "batch_end_interval", 0) or 0
    return interval > 0 and callable(getattr(callback, f"on_{mode}_batch_means", None))


def _target(callback, mode, phase):
    """The bound method to call for `on_<mode>_batch_<phase>`.

    When a train hook is the base class's (which only forwards to the legacy `on_batch_<phase>`), call the
    legacy hook directly: same behaviour, one Python frame less per batch.
    """
    name = f"on_{mode}_batch_{phase}"
    if mode == "train" and not overrides(callback, name, Callback):
        return getattr(callback, f"on_batch_{phase}")
    return getattr(callback, name)


def _logs_builder(names, out):
    """A function (batch, size, stats) -> batch-end logs (with metrics: a `Logs`, where aliases of the keys
    answer), specialised for short key lists (the common case): this runs once per batch.
    """
    if out is not None:
        return lambda batch, size, stats: {"batch": batch, "size": size,
                                           "outputs": out[int(stats[0]):int(stats[0]) + size]}
    if len(names) == 1:
        (a,) = names
        return lambda batch, size, stats: Logs({"batch": batch, "size": size, a: stats.item(0)})
    if len(names) == 2:
        a, b = names

        def build_two(batch, size, stats):
            first, second = stats.item(0), stats.item(1)
            return Logs({"batch": batch, "size": size, a: first, b: second})
        return build_two
    count = len(names)

    def build(batch, size, stats):
        logs = {"batch": batch, "size": size}
        logs.update(zip(names, stats.tolist()[:count]))
        return Logs(logs)
    return build


def make_batch_hook(cbks: Iterable[Any], mode: str, metrics_names: Sequence[str], model: Any,
                    out: np.ndarray | None = None, metric_pass: Any = None, readout: Any = None) -> BatchHook | None:
    """Build the engine hook for the batch hooks of `cbks` in `mode`, or return None if nobody listens.

    Arguments:
        cbks: a `CallbackList` (or any iterable of callbacks).
        mode: 'train', 'test' or 'predict'.
        metrics_names: the keys of one batch's values, e.g. `['loss', 'acc']` (ignored for predict).
        model: the model; in train mode the hook returns `model.stop_training` to stop the engine.
        out: for predict, the output array the engine writes; batch end logs carry `out[start:start+size]`.
        metric_pass: for a model with custom metrics, the pass's `fastfit.engine.custom_metrics.MetricPass`:
            the hook then exists whatever the callbacks, is called at every batch end with the batch's
            output in `predictions` (the pass's array), and updates the custom metrics first.
        readout: the model's `fastfit.engine.metric_readout.Readout`; when it has metric objects, batch logs
            carry their running values (read from the engine's counts) instead of per-batch values.

    Returns:
        None, or a `BatchHook`.

    Raises:
        ValueError: unknown `mode`.
    """
    check_hook_mode(mode)
    begin, end = [], []
    for callback in cbks:
        wants_begin, wants_end = batch_hooks_needed(callback, mode)
        if wants_begin:
            begin.append(callback)
        if wants_end:
            end.append(callback)
    means, interval = [], 0.0
    if end and all(_throttled(callback, mode) for callback in end):
        means, end = end, []
        interval = min(float(callback.batch_end_interval) for callback in means)
    # In train mode the end call is also where a stop request is seen: keep it when a begin hook could set
    # the flag, or when the flag is already set (a stop asked for in on_train_begin stops after one batch).
    check_stop = mode == "train" and (begin or getattr(model, "stop_training", False))
    if mode == "predict":
        metric_pass = None
    if not (begin or end or means or check_stop or metric_pass):
        return None
    if check_stop or metric_pass:
        interval = 0.0  # see every batch end; a throttled callback then throttles itself
    if mode == "predict" or (readout is not None and not readout.has_objects):
        readout = None
    return BatchHook(mode, metrics_names, model, out, begin, end, means, interval, metric_pass, readout)


class BatchHook:
    """Engine hook: `hook(phase, batch, size, stats)` with phase 0 (batch begin) or 1 (batch end).

    Attributes:
        batch_begin, batch_end: whether the engine should call the hook at those boundaries.
        end_interval: minimum seconds between end calls (0 = every batch), always called on the last batch.
        end_calls: None, or `(callables, keys, model)`: a batch end is then `call(batch, logs)` for each
            callable, with `logs = {'batch', 'size', keys[i]: stats[i]}`, and returns
            `model.stop_training` (model None: False). An engine may do exactly that instead of calling
            the hook.
        predictions: None, or the array the engine copies each batch's output into before the batch end
            call (custom metrics).

    Returns (from a call): in train mode after a batch end, `model.stop_training`; otherwise False.
    """

    def __init__(self, mode: str, metrics_names: Sequence[str], model: Any, out: np.ndarray | None,
                 begin: Sequence[Callback], end: Sequence[Callback], means: Sequence[Callback], interval: float,
                 metric_pass: Any = None, readout: Any = None) -> None:
        self.mode = mode
        self.batch_begin = bool(begin)
        self.batch_end = bool(end or means or metric_pass) or mode == "train"
        self.end_interval = interval
        self._pass = metric_pass
        # A readout without metric objects reads the stats as they are: the plain path (and the Cython
        # engine's batch-end shortcut below) gives the same logs.
        self._readout = readout if readout is not None and readout.has_objects else None
        self.predictions = None if metric_pass is None else metric_pass.predictions
        if metric_pass is not None:
            metrics_names = metric_pass.native_names  # the engine's stats hold these; the pass adds the rest
        if readout is not None:
            metrics_names = readout.stat_keys
        self._names = list(metrics_names) if mode != "predict" else []
        self._count = len(self._names)
        self._model = model
        self._build = _logs_builder(self._names, out if mode == "predict" else None)
        self._begin = [_target(callback, mode, "begin") for callback in begin]
        self._end = [_target(callback, mode, "end") for callback in end]
        self._means = [getattr(callback, f"on_{mode}_batch_means") for callback in means]
        self._train = mode == "train"
        # The Cython engine's shortcut for batch ends (docs/architecture.md, "Hooks"): it builds these same
        # logs itself and calls the callbacks directly, saving this object's Python frames on every batch.
        self.end_calls = ((tuple(self._end), tuple(self._names), model if self._train else None)
                          if self._end and mode != "predict" and metric_pass is None and self._readout is None
                          else None)

    def __call__(self, phase: int, batch: int, size: int, stats: np.ndarray) -> bool:
        batch = int(batch)
        size = int(size)
        if not phase:
            logs = {"batch": batch, "size": size}
            for call in self._begin:
                call(batch, logs)
            return False
        if self._pass is not None:
            self._pass.update(batch, size)
        if self._end:
            if self._pass is None and self._readout is None:
                logs = self._build(batch, size, stats)
            else:
                native = (self._readout.batch_values(stats) if self._readout is not None
                          else dict(zip(self._names, stats.tolist()[:self._count])))
                logs = (self._pass.batch_logs(batch, size, native) if self._pass is not None
                        else Logs({"batch": batch, "size": size, **native}))
            for call in self._end:
                call(batch, logs)
        elif self._means:
            self._call_means(batch, stats)
        return self._train and bool(self._model.stop_training)

    def _call_means(self, batch, stats):
        count = self._count
        values = stats[count:2 * count + 1].tolist()  # [seen, loss_sum, metric_sum, ...]
        seen = values[0]
        logs = {"batch": batch, "seen": int(seen)}
        if seen > 0:
            native = (self._readout.running_values(stats) if self._readout is not None
                      else dict(zip(self._names, [total / seen for total in values[1:]])))
            logs.update(native if self._pass is None else self._pass.running_values(native))
        logs = Logs(logs)
        for call in self._means:
            call(batch, logs)
