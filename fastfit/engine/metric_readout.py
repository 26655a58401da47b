"""How a compiled model's metric values come out of its engine: `Readout`.

The engine computes, without the GIL, the loss and the built-in metrics (names and functions of
`fastfit.metrics`, and the mean metric objects such as `BinaryAccuracy()`) as per-batch values and running
sums in its `stats`, and the confusion metric objects (`Precision()`, `AUC()`, ...) as threshold histograms
in its `confusion_counts`. A `Readout` knows which key is where:

- a metric given by name logs its batch value in batch logs (Keras 2) and the size-weighted mean of the batch
  values at the epoch end;
- a metric object logs, as tf.keras does, the value over everything seen so far in the pass: in batch logs
  the running value, at the epoch end the value over the whole pass's counts. Its state is loaded from the
  engine's counts whenever a value is read, so `metric.result()` after `fit`/`evaluate` is the last pass's.

Custom metrics (run in Python, `fastfit.engine.custom_metrics`) are not the readout's: it gives the values of
every other key.
"""
from fastfit.metrics import EngineMetric
from fastfit.contract.checks import histogram_size


class Readout:
    """The engine-computed metrics of a compiled model.

    Arguments:
        resolved: `(key, metric)` per compiled metric, in order (`fastfit.metrics.resolve`): a canonical
            name, a built-in metric object or a custom metric (skipped here).
        loss: the canonical loss name; units: the output units.

    Attributes:
        stat_keys: `['loss', ...]`: the keys of the engine's per-batch stats, in order.
        engine_metrics: the engine metric entries, in stats order; confusion: the engine's histogram specs.
        has_objects: whether any metric object is compiled (then batch logs need `batch_values`).
    """

    def __init__(self, resolved, loss, units):
        self.stat_keys = ["loss"]
        self.engine_metrics = []
        self.confusion = []
        self._running = []  # (key, stats index, object) of the mean metric objects
        self._histograms = []  # (key, slice of confusion_counts, object)
        self._order = ["loss"]  # every key of this readout, in `metrics_names` order
        offset = 0
        for key, metric in resolved:
            if isinstance(metric, (str, EngineMetric)):
                self._order.append(key)
            if isinstance(metric, str):
                self.stat_keys.append(key)
                self.engine_metrics.append(metric)
            elif isinstance(metric, EngineMetric):
                kind, entry = metric.engine_entry(loss, units)
                if kind == "mean":
                    self._running.append((key, len(self.stat_keys), metric))
                    self.stat_keys.append(key)
                    self.engine_metrics.append(entry)
                else:
                    size = histogram_size(entry[0])
                    self._histograms.append((key, slice(offset, offset + size), metric))
                    self.confusion.append(entry)
                    offset += size
        self.has_objects = bool(self._running or self._histograms)
        self.counts = None  # the engine network's confusion_counts, bound by `bind`

    def bind(self, network):
        """Read the histograms from `network` (the engine network that runs the passes)."""
        self.counts = getattr(network, "confusion_counts", None)

    def _ordered(self, values):
        return {key: values[key] for key in self._order}

    def _confusion_values(self):
        values = {}
        for key, where, metric in self._histograms:
            metric.load_engine_counts(self.counts[where])
            values[key] = float(metric.result())
        return values

    def batch_values(self, stats):
        """{key: batch-end log value} from the hook's `stats` `[batch values..., seen, sums...]`."""
        count = len(self.stat_keys)
        values = dict(zip(self.stat_keys, stats[:count].tolist()))
        seen = float(stats[count])
        for key, index, metric in self._running:
            metric.load_engine_counts((stats[count + 1 + index], seen))
            values[key] = metric.result()
        values.update(self._confusion_values())
        return self._ordered(values)

    def running_values(self, stats):
        """{key: value over the pass so far}: running means of every stat, metric objects' values."""
        count = len(self.stat_keys)
        seen = float(stats[count])
        values = {key: float(stats[count + 1 + i] / seen) if seen else 0.0 for i, key in enumerate(self.stat_keys)}
        for _, index, metric in self._running:
            metric.load_engine_counts((stats[count + 1 + index], seen))
        values.update(self._confusion_values())
        return self._ordered(values)

    def epoch_values(self, sums):
        """{key: epoch value} from the engine's `[seen, loss_sum, metric sums...]` ({} when no batch ran)."""
        seen = float(sums[0])
        if seen == 0:
            return {}
        values = {key: float(sums[1 + i] / seen) for i, key in enumerate(self.stat_keys)}
        for _, index, metric in self._running:
            metric.load_engine_counts((sums[1 + index], seen))
        values.update(self._confusion_values())
        return self._ordered(values)
