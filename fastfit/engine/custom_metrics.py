"""Custom metrics: computed in Python at each batch end, from the batch's output the engine copies out.

A compiled model with custom metrics has a `CustomMetrics`; each pass over data (a training epoch, a
validation pass, an `evaluate`, one `train_on_batch`) gets a fresh `MetricPass`, whose `predictions` array
the engine fills with each batch's output before the batch end call (the hook's `predictions`, see
`fastfit.contract.checks.check_predictions`). A model without custom metrics has none, and its epochs
run without the GIL as before.

Values follow Keras 2.2 for `compile(metrics=...)`: a function's batch value is the mean of what it
returns (a per-sample vector or a scalar), its epoch value the batch values weighted by batch size (the
sample weights weigh the loss only, as for the built-in metrics); an object of the class form is reset at
the start of each pass and logs `result()`.
"""
import numpy as np

from fastfit.engine.logs import Logs


class CustomMetrics:
    """The custom metrics of a compiled model.

    Arguments:
        names: the model's `metrics_names` (`['loss', ...]`), built-in and custom, in compile order.
        custom: {log key: function or metric object} for the custom ones.
    """

    def __init__(self, names, custom):
        self.names = list(names)
        self.custom = dict(custom)
        self.native_names = [name for name in self.names if name not in self.custom]

    def new_pass(self, y, order, batch_size, dtype, units):
        """A `MetricPass` over targets `y`, batches of `batch_size` rows walking `order` (None: row order);
        `y=None`: a pass run as several engine calls, each bound with `MetricPass.bind` first."""
        return MetricPass(self, y, order, batch_size, dtype, units)


class MetricPass:
    """The running state of the custom metrics over one pass; `predictions` is the engine's copy target.

    A pass may run as several engine calls (parts: groups of generator batches, buffers read from disk): each
    part is bound with `bind` before its call, and the values run on across parts in batch order, so a pass
    cut into parts of whole batches gives the values of one call over the same batches."""

    def __init__(self, metrics, y, order, batch_size, dtype, units):
        self.names = metrics.names
        self.native_names = metrics.native_names
        self._dtype, self._units = dtype, units
        self.predictions = None
        if y is not None:
            self.bind(y, order, batch_size)
        self._functions = [(key, m) for key, m in metrics.custom.items() if not hasattr(m, "update_state")]
        self._objects = [(key, m) for key, m in metrics.custom.items() if hasattr(m, "update_state")]
        self._totals = {key: 0.0 for key, _ in self._functions}
        self._last = {}
        self.seen = 0
        for _, metric in self._objects:
            (getattr(metric, "reset_state", None) or metric.reset_states)()

    def bind(self, y, order, batch_size, first_batch=0):
        """Take the targets of the next engine call: targets `y`, batches of `batch_size` rows walking `order`
        (None: row order), its first batch numbered `first_batch` in the batch indices `update` receives.
        `predictions` is then an array of the shape this call's engine checks."""
        self._y, self._order, self._batch_size, self._first_batch = y, order, batch_size, first_batch
        rows = min(batch_size, len(y) if order is None else len(order))
        if self.predictions is None or self.predictions.shape[0] != rows:
            self.predictions = np.zeros((rows, self._units), self._dtype)

    def update(self, batch, size):
        """Feed batch `batch` (`size` rows, its output in `predictions[:size]`) to every custom metric."""
        start = (batch - self._first_batch) * self._batch_size
        rows = slice(start, start + size) if self._order is None else self._order[start:start + size]
        y_true = self._y[rows].copy() if self._order is None else self._y[rows]
        y_pred = self.predictions[:size].copy()  # the engine reuses the buffer for the next batch
        for key, function in self._functions:
            value = _mean(key, function(y_true, y_pred))
            self._last[key] = value
            self._totals[key] += value * size
        for _, metric in self._objects:
            metric.update_state(y_true, y_pred, sample_weight=None)
        self.seen += size

    def _values(self, running):
        values = {key: (self._totals[key] / self.seen if running else self._last[key]) if self.seen else 0.0
                  for key, _ in self._functions}
        values.update((key, _mean(key, metric.result())) for key, metric in self._objects)
        return values

    def batch_logs(self, batch, size, native):
        """Batch end logs: `native` ({key: value} of the engine-computed metrics), then the custom values
        of this batch (a function's value on this batch, an object's `result()` so far), in
        `metrics_names` order."""
        values = dict(native)
        values.update(self._values(running=False))
        logs = {"batch": batch, "size": size}
        logs.update((name, values[name]) for name in self.names)
        return Logs(logs)

    def running_values(self, native):
        """{key: running epoch value} in `metrics_names` order, from `native` (the engine-computed
        metrics' running values)."""
        values = dict(native)
        values.update(self._values(running=True))
        return {name: values[name] for name in self.names}

    def epoch_logs(self, native):
        """The pass's logs from `native` (the engine-computed metrics' epoch values, {} when no batch ran)
        and the custom metrics' epoch values, in `metrics_names` order (empty when no batch ran)."""
        if not native:
            return Logs()
        return Logs(self.running_values(native))


def _mean(key, value):
    """A metric's value as a Python float: the mean of an array, the number itself for a scalar."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"Custom metric {key!r} must return a number or an array of numbers, got "
                        f"{type(value).__name__} {value!r}") from None
    return float(array.mean()) if array.size else float("nan")
