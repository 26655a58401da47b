"""Metrics (Keras 2 names), metric objects (tf.keras names) and custom metrics.

`compile(metrics=[...])` takes strings or functions of this module or `fastfit.losses`, which the engines
compute without the GIL, and custom metrics, which run in Python at each batch end: a function
`metric(y_true, y_pred)` of NumPy arrays, or an object with `update_state` / `result` / `reset_state` (such
as a subclass of `Metric`). The log key is the string the user passed (`'acc'` → `acc`, `'accuracy'` →
`accuracy`), a function's `__name__` or an object's `name`. `'acc'` and `'accuracy'` resolve to binary,
categorical or sparse categorical accuracy from the loss and output size, as Keras does.

The metric objects of tf.keras (`Precision()`, `AUC()`, `BinaryAccuracy()`, ...) are computed by the engines
too, without the GIL: the mean metrics as running sums, the confusion metrics as per-threshold histograms
(`fastfit._reference.metrics.threshold_histogram`). Their value at an epoch end is the value over the whole
epoch's counts (tf.keras's streaming semantics), in batch logs the value so far. Called directly
(`update_state` / `result` / `reset_state`) they compute the same in NumPy.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fastfit import backend
from fastfit import losses as _losses
from fastfit._reference import metrics as _twin  # the NumPy twins of the engine kernels
from fastfit.contract.checks import histogram_size, split_entry
from fastfit.contract.names import FROM_LOGITS_LOSSES, LOSSES, METRICS, SPARSE_LOSSES, SPARSE_METRICS
from fastfit.losses import per_sample_function

_ACCURACY = ("acc", "accuracy")
_CROSSENTROPY = ("ce", "crossentropy")


binary_accuracy = per_sample_function(_twin, "binary_accuracy")
categorical_accuracy = per_sample_function(_twin, "categorical_accuracy")
sparse_categorical_accuracy = per_sample_function(_twin, "sparse_categorical_accuracy")
top_k_categorical_accuracy = per_sample_function(_twin, "top_k_categorical_accuracy")
sparse_top_k_categorical_accuracy = per_sample_function(_twin, "sparse_top_k_categorical_accuracy")


class Metric:
    """Base class of streaming custom metrics (tf.keras names).

    Subclasses implement `update_state(y_true, y_pred, sample_weight=None)` (NumPy arrays of one batch),
    `result()` (the value so far) and `reset_state()`. The log key is `name` (default: the class name in
    snake_case). fastfit resets the metric at the start of every epoch, of every validation pass and of
    every `evaluate`, and logs `result()`: in batch logs the value so far, in epoch logs the final one.
    As for every metric under `compile(metrics=...)`, `sample_weight` is None (Keras weighs only the loss).
    """

    def __init__(self, name: str | None = None, dtype: str | None = None) -> None:
        self.name = name or re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()
        self.dtype = dtype

    def update_state(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike,
                     sample_weight: npt.ArrayLike | None = None) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement update_state(y_true, y_pred, "
                                  "sample_weight=None)")

    def result(self) -> float | np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement result()")

    def reset_state(self) -> None:
        if type(self).reset_states is not Metric.reset_states:  # a subclass written with the older name
            return self.reset_states()
        raise NotImplementedError(f"{type(self).__name__} must implement reset_state()")

    def reset_states(self) -> None:
        """The Keras 2 / tf.keras 2.0-2.4 spelling of `reset_state`."""
        self.reset_state()

    def __call__(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike,
                 sample_weight: npt.ArrayLike | None = None) -> float | np.ndarray:
        """Update with one batch and return the result so far (as tf.keras does)."""
        self.update_state(y_true, y_pred, sample_weight=sample_weight)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


# ---------------------------------------------------------------------------------------------------------
# Metric objects the engines compute (tf.keras classes)

_NEG_INF = -1e10  # tf.keras's threshold when only top_k decides (every top-k prediction is positive)


class EngineMetric(Metric):
    """A metric object the engines compute inside their loop (no Python per batch).

    `direction` is 'max' or 'min': which way is better, read by the `mode='auto'` of the callbacks that
    monitor a logs key. `engine_entry(loss, units)` says what the engine computes: `('mean', entry)`, an
    engine metric entry whose epoch value is its running mean, or `('confusion', (thresholds, class_id,
    top_k))`, a threshold histogram. `load_engine_counts` sets the state from the engine's counts, after which
    `result()` is the value over them.
    """

    direction = "max"

    def engine_entry(self, loss: str, units: int | None) -> tuple:
        raise NotImplementedError

    def load_engine_counts(self, counts: Sequence[float] | np.ndarray) -> None:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype or "float32"}

    @classmethod
    def from_config(cls, config: dict) -> EngineMetric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _sample_weights(sample_weight, shape):
    """Weights broadcast to `shape` (tf.keras: a weight per row of a (rows, units) array, or per element)."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.ndim == len(shape) - 1 and len(shape) >= 2:
        weights = weights[..., None]
    try:
        return np.broadcast_to(weights, shape)
    except ValueError:
        raise ValueError(f"sample_weight: shape {np.shape(sample_weight)} does not fit values of shape "
                         f"{shape}") from None


class _MeanMetric(EngineMetric):
    """The (sample-weighted) mean of a per-sample metric over everything seen since the last reset."""

    _metric = ""  # the canonical name of the per-sample metric

    def __init__(self, name: str | None = None, dtype: str | None = None) -> None:
        super().__init__(name=name or self._metric, dtype=dtype)
        self.reset_state()

    def _param(self):
        return None

    def update_state(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike,
                     sample_weight: npt.ArrayLike | None = None) -> None:
        y_pred = np.asarray(y_pred)
        y_pred = y_pred.astype(np.result_type(y_pred.dtype, np.float32), copy=False)
        if y_pred.ndim == 1 and self._metric not in ("sparse_categorical_accuracy",
                                                     "sparse_top_k_categorical_accuracy"):
            y_pred = y_pred[:, None]  # one value per sample
        values = _twin.per_sample(self._metric, np.asarray(y_true), y_pred, self._param()).astype(np.float64)
        weights = _sample_weights(sample_weight, values.shape)
        if weights is None:
            self._total += float(values.sum())
            self._count += float(values.size)
        else:
            self._total += float((values * weights).sum())
            self._count += float(weights.sum())

    def result(self) -> float:
        return self._total / self._count if self._count else 0.0

    def reset_state(self) -> None:
        self._total = 0.0
        self._count = 0.0

    def engine_entry(self, loss: str, units: int | None) -> tuple[str, Any]:
        param = self._param()
        return "mean", (self._metric if param is None else (self._metric, param))

    def load_engine_counts(self, counts: Sequence[float] | np.ndarray) -> None:
        """`counts`: (sum of the per-sample values, samples)."""
        self._total, self._count = float(counts[0]), float(counts[1])


class BinaryAccuracy(_MeanMetric):
    """How often `y_true == (y_pred > threshold)`, averaged over the outputs and samples (tf.keras)."""

    _metric = "binary_accuracy"

    def __init__(self, name: str = "binary_accuracy", dtype: str | None = None, threshold: float = 0.5) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) \
                or not np.isfinite(threshold):
            raise ValueError(f"BinaryAccuracy: `threshold` must be a finite number, got {threshold!r}")
        self.threshold = float(threshold)
        super().__init__(name=name, dtype=dtype)

    def _param(self):
        return self.threshold

    def get_config(self) -> dict:
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(_MeanMetric):
    """How often the argmax of the prediction is the argmax of the one-hot target (tf.keras)."""

    _metric = "categorical_accuracy"

    def __init__(self, name: str = "categorical_accuracy", dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)


class SparseCategoricalAccuracy(_MeanMetric):
    """How often the argmax of the prediction is the integer label (tf.keras)."""

    _metric = "sparse_categorical_accuracy"

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)


class TopKCategoricalAccuracy(_MeanMetric):
    """How often the one-hot target is among the `k` largest predictions (tf.keras)."""

    _metric = "top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype: str | None = None) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"{type(self).__name__}: `k` must be a positive int, got {k!r}")
        self.k = int(k)
        super().__init__(name=name, dtype=dtype)

    def _param(self):
        return self.k

    def get_config(self) -> dict:
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """How often the integer label is among the `k` largest predictions (tf.keras)."""

    _metric = "sparse_top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy", dtype: str | None = None) -> None:
        super().__init__(k=k, name=name, dtype=dtype)


class MeanSquaredError(_MeanMetric):
    """The mean squared error over everything seen (tf.keras)."""

    _metric = "mean_squared_error"
    direction = "min"

    def __init__(self, name: str = "mean_squared_error", dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)


class MeanAbsoluteError(_MeanMetric):
    """The mean absolute error over everything seen (tf.keras)."""

    _metric = "mean_absolute_error"
    direction = "min"

    def __init__(self, name: str = "mean_absolute_error", dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)


def _thresholds(owner: str, thresholds, default: float) -> tuple[list, bool]:
    """(list of thresholds, whether the result is one value) from a tf.keras `thresholds` argument."""
    if thresholds is None:
        return [default], True
    single = not isinstance(thresholds, (list, tuple, np.ndarray))
    values = [thresholds] if single else list(np.asarray(thresholds, dtype=object).ravel())
    if not values or any(isinstance(t, bool) or not isinstance(t, (int, float, np.number)) or not 0 <= t <= 1
                         for t in values):
        raise ValueError(f"{owner}: threshold values must be numbers in [0, 1], got {thresholds!r}")
    return [float(t) for t in values], single


class _ConfusionMetric(EngineMetric):
    """A metric of the true/false positive/negative counts at thresholds (p > threshold is positive)."""

    _class_id: int | None = None
    _top_k: int | None = None

    def _setup(self, thresholds: list, single: bool, class_id=None, top_k=None) -> None:
        owner = type(self).__name__
        for what, value, low in (("class_id", class_id, 0), ("top_k", top_k, 1)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or value < low):
                raise ValueError(f"{owner}: `{what}` must be None or an int >= {low}, got {value!r}")
        self._class_id = None if class_id is None else int(class_id)
        self._top_k = None if top_k is None else int(top_k)
        self._single = single
        self._given = np.asarray(thresholds, dtype=np.float64)
        self._sorted = np.sort(self._given)
        self._order = np.searchsorted(self._sorted, self._given)  # given order -> sorted position
        self.reset_state()

    def reset_state(self) -> None:
        self._hist = np.zeros(histogram_size(self._sorted))

    def update_state(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike,
                     sample_weight: npt.ArrayLike | None = None) -> None:
        y_pred = np.asarray(y_pred, dtype=np.float64)
        y_true = np.asarray(y_true)
        if y_true.shape != y_pred.shape:
            try:
                y_true = np.broadcast_to(y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true,
                                         y_pred.shape)
            except ValueError:
                raise ValueError(f"{type(self).__name__}: y_true of shape {np.shape(y_true)} does not fit "
                                 f"y_pred of shape {y_pred.shape}") from None
        if np.any(~((y_pred >= 0) & (y_pred <= 1))):
            raise ValueError(f"{type(self).__name__}: predictions must be in [0, 1] (tf.keras asserts "
                             "'predictions must be >= 0' and '<= 1')")
        if self._class_id is not None and (y_pred.ndim == 0 or self._class_id >= y_pred.shape[-1]):
            raise ValueError(f"{type(self).__name__}: class_id {self._class_id} is not a column of y_pred "
                             f"of shape {y_pred.shape}")
        weights = _sample_weights(sample_weight, y_pred.shape)
        self._hist += _twin.threshold_histogram(y_true, y_pred, self._sorted, self._class_id, self._top_k,
                                                weights)

    def _counts(self):
        """(tp, fp, tn, fn) per threshold, in the order the thresholds were given."""
        return tuple(c[self._order] for c in _twin.confusion_counts(self._hist))

    def _one(self, values):
        return float(values[0]) if self._single else values

    def engine_entry(self, loss: str, units: int | None) -> tuple[str, Any]:
        if not self._single:
            raise ValueError(f"Metric {self.name!r} has {len(self._given)} thresholds and so one value per "
                             "threshold, which fastfit's logs cannot hold: compile one metric object per "
                             "threshold, or call the object directly (update_state/result) after predict")
        if loss in SPARSE_LOSSES:
            raise ValueError(f"Metric {self.name!r} needs targets of the output's shape; with integer labels "
                             "use loss='categorical_crossentropy' and one-hot targets")
        if units is not None and self._class_id is not None and self._class_id >= units:
            raise ValueError(f"Metric {self.name!r}: class_id {self._class_id} is not one of the model's "
                             f"{units} outputs")
        if units is not None and self._top_k is not None and self._top_k > units:
            raise ValueError(f"Metric {self.name!r}: top_k {self._top_k} is larger than the model's {units} "
                             "outputs")
        return "confusion", (tuple(self._sorted.tolist()), -1 if self._class_id is None else self._class_id,
                             self._top_k or 0)

    def load_engine_counts(self, counts: Sequence[float] | np.ndarray) -> None:
        """`counts`: the engine's threshold histogram of this object.

        Raises:
            ValueError: predictions outside [0, 1] were counted (tf.keras fails on them).
        """
        if counts[-1] > 0:
            raise ValueError(f"Metric {self.name!r}: {int(counts[-1])} predictions were outside [0, 1] (or "
                             "NaN); threshold metrics need probabilities (tf.keras asserts 'predictions must "
                             "be >= 0' and '<= 1'): use a sigmoid or softmax output")
        self._hist = np.array(counts, dtype=np.float64)


class _ConditionCount(_ConfusionMetric):
    _index = 0  # tp, fp, tn, fn

    def __init__(self, thresholds: float | Sequence[float] | None = None, name: str | None = None,
                 dtype: str | None = None) -> None:
        default = re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()
        super().__init__(name=name or backend.unique_object_name(default), dtype=dtype)
        self.init_thresholds = thresholds
        self._setup(*_thresholds(type(self).__name__, thresholds, 0.5))

    def result(self) -> float | np.ndarray:
        return self._one(self._counts()[self._index])

    def get_config(self) -> dict:
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConditionCount):
    """The number of true positives (predictions above the threshold whose target is non-zero)."""
    _index = 0


class FalsePositives(_ConditionCount):
    """The number of false positives (predictions above the threshold whose target is zero)."""
    _index = 1
    direction = "min"


class TrueNegatives(_ConditionCount):
    """The number of true negatives (predictions at or below the threshold whose target is zero)."""
    _index = 2


class FalseNegatives(_ConditionCount):
    """The number of false negatives (predictions at or below the threshold whose target is non-zero)."""
    _index = 3
    direction = "min"


class _PrecisionRecall(_ConfusionMetric):
    def __init__(self, thresholds: float | Sequence[float] | None = None, top_k: int | None = None,
                 class_id: int | None = None, name: str | None = None, dtype: str | None = None) -> None:
        super().__init__(name=name or backend.unique_object_name(type(self).__name__.lower()), dtype=dtype)
        self.init_thresholds = thresholds
        default = 0.5 if top_k is None else _NEG_INF
        self._setup(*_thresholds(type(self).__name__, thresholds, default), class_id=class_id, top_k=top_k)
        self.top_k = top_k
        self.class_id = class_id

    def get_config(self) -> dict:
        return {**super().get_config(), "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


def _divide(a, b):
    """a / b, 0 where b is 0 (tf.math.divide_no_nan)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


class Precision(_PrecisionRecall):
    """TP / (TP + FP) over everything seen (tf.keras `Precision`: `thresholds`, `top_k`, `class_id`)."""

    def result(self) -> float | np.ndarray:
        tp, fp, _, _ = self._counts()
        return self._one(_divide(tp, tp + fp))


class Recall(_PrecisionRecall):
    """TP / (TP + FN) over everything seen (tf.keras `Recall`: `thresholds`, `top_k`, `class_id`)."""

    def result(self) -> float | np.ndarray:
        tp, _, _, fn = self._counts()
        return self._one(_divide(tp, tp + fn))


class AUC(_ConfusionMetric):
    """Area under the ROC or PR curve by a Riemann sum over `num_thresholds` thresholds (tf.keras `AUC`).

    Thresholds: `num_thresholds - 2` evenly spaced in (0, 1) (or the given `thresholds`), plus -1e-7 and
    1 + 1e-7. `summation_method`: 'interpolation' (trapezoids for ROC; for PR the interpolation of Davis &
    Goadrich 2006, as tf.keras), 'minoring' or 'majoring'. Multi-output models are scored with all outputs
    pooled (tf.keras's `multi_label=False`).
    """

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC", summation_method: str = "interpolation",
                 name: str | None = None, dtype: str | None = None, thresholds: Sequence[float] | None = None,
                 multi_label: bool = False, num_labels: int | None = None, label_weights: Sequence[float] | None = None,
                 from_logits: bool = False) -> None:
        if curve not in ("ROC", "PR"):
            raise ValueError(f"AUC: `curve` must be 'ROC' or 'PR', got {curve!r}")
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f"AUC: `summation_method` must be 'interpolation', 'minoring' or 'majoring', "
                             f"got {summation_method!r}")
        for what, value, neutral in (("multi_label", multi_label, False), ("num_labels", num_labels, None),
                                     ("label_weights", label_weights, None), ("from_logits", from_logits, False)):
            if value is not neutral and value != neutral:
                raise ValueError(f"AUC: `{what}={value!r}` is not supported by fastfit; leave it at "
                                 f"{neutral!r} (outputs pooled, probabilities as predictions)")
        if thresholds is not None:
            inner, _ = _thresholds("AUC", list(thresholds), 0.5)
            num_thresholds = len(inner) + 2
            inner = sorted(inner)
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer)) \
                    or num_thresholds <= 1:
                raise ValueError(f"AUC: `num_thresholds` must be an int > 1, got {num_thresholds!r}")
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        super().__init__(name=name or backend.unique_object_name("auc"), dtype=dtype)
        self.num_thresholds = int(num_thresholds)
        self.curve = curve
        self.summation_method = summation_method
        self._init_from_thresholds = thresholds is not None
        self._setup([0.0 - 1e-7] + inner + [1.0 + 1e-7], True)
        self._single = False  # one value from every threshold's counts

    @property
    def thresholds(self) -> list:
        return self._given.tolist()

    def result(self) -> float:
        tp, fp, tn, fn = self._counts()
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc(tp, fp, fn)
        recall = _divide(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide(fp, fp + tn), recall
        else:
            x, y = recall, _divide(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return float(np.sum((x[:-1] - x[1:]) * heights))

    @staticmethod
    def _interpolate_pr_auc(tp, fp, fn) -> float:
        """PR-AUC with precision interpolated between thresholds (Davis & Goadrich 2006, tf.keras's formula)."""
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide(p[:-1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore"):
            log_ratio = np.log(np.where(ratio > 0, ratio, 1.0))
        return float(np.sum(_divide(slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0))))

    def engine_entry(self, loss: str, units: int | None) -> tuple[str, Any]:
        self._single = True  # the checks of one value per log key hold: AUC is one number
        try:
            return super().engine_entry(loss, units)
        finally:
            self._single = False

    def get_config(self) -> dict:
        config = {**super().get_config(), "num_thresholds": self.num_thresholds, "curve": self.curve,
                  "summation_method": self.summation_method, "multi_label": False, "num_labels": None,
                  "label_weights": None, "from_logits": False}
        config["thresholds"] = self._given[1:-1].tolist() if self._init_from_thresholds else None
        return config


ENGINE_METRIC_CLASSES = {cls.__name__: cls for cls in (
    TruePositives, FalsePositives, TrueNegatives, FalseNegatives, Precision, Recall, AUC, BinaryAccuracy,
    CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
    MeanSquaredError, MeanAbsoluteError)}
"""The metric objects the engines compute, by class name (the `class_name` of a saved training config)."""


_OBJECT_STRINGS = {**ENGINE_METRIC_CLASSES, **{
    re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower(): cls
    for cls in (TruePositives, FalsePositives, TrueNegatives, FalseNegatives, Precision, Recall, AUC)}}
"""Strings that make a metric object: the class names (tf.keras: `metrics=['AUC']`) and Keras 3's snake_case
names of the confusion metrics (`'auc'`, `'precision'`); the snake_case names of the mean metrics stay Keras 2's
functions (`'binary_accuracy'`), which give the same epoch values."""


def serialize(metric: EngineMetric) -> dict:
    """`{'class_name': ..., 'config': {...}}`: a metric object as tf.keras writes it in a training config."""
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config: dict) -> EngineMetric:
    """A metric object from `{'class_name': ..., 'config': {...}}` (a tf.keras or Keras 3 training config
    entry; a `dtype` that is not a string, such as a Keras 3 dtype policy, is dropped).

    Raises:
        ValueError: not one of `ENGINE_METRIC_CLASSES`, or a config its class does not take.
    """
    name = config.get("class_name") if isinstance(config, dict) else None
    cls = ENGINE_METRIC_CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"Unknown metric object {config!r}; fastfit's metric objects are "
                         f"{sorted(ENGINE_METRIC_CLASSES)}")
    arguments = dict(config.get("config") or {})
    if not isinstance(arguments.get("dtype"), (str, type(None))):
        arguments.pop("dtype")
    try:
        return cls.from_config(arguments)
    except TypeError as error:
        raise ValueError(f"Metric object {config['class_name']}: cannot be rebuilt from config {arguments!r} "
                         f"({error})") from None


def is_streaming(metric: object) -> bool:
    """True for a metric object of the class form (`update_state` and `result` methods)."""
    return (not isinstance(metric, type) and callable(getattr(metric, "update_state", None))
            and callable(getattr(metric, "result", None)))


def is_builtin(identifier: object) -> bool:
    """True for a metric name (or alias) fastfit's engines compute, or a function of this module or losses."""
    if isinstance(identifier, str):
        return (_losses.ALIASES.get(identifier, identifier) in METRICS or identifier in _ACCURACY + _CROSSENTROPY
                or identifier in _OBJECT_STRINGS)
    name = getattr(identifier, "__name__", None)
    if not isinstance(name, str) or not name:
        return False
    return globals().get(name) is identifier or getattr(_losses, name, None) is identifier


def resolve(identifier: str | Callable[..., Any], loss: str, units: int | None) -> tuple[str, Any]:
    """Return `(log_key, metric)` for one entry of `compile(metrics=...)`.

    `metric` is the canonical name of a built-in metric (a str), a metric object the engines compute
    (`EngineMetric`; a class name such as `'AUC'` makes one, as in tf.keras), or the custom metric itself: a
    function `f(y_true, y_pred)` or an object of the class form (see `Metric`).

    Arguments:
        identifier: what the user passed: a string, a function or a metric object.
        loss: the canonical loss name of the model.
        units: the number of output units.

    Raises:
        ValueError: unknown metric name, an object without a usable name, a metric class instead of an
            instance, or a built-in metric that cannot be computed for this loss's targets.
    """
    if isinstance(identifier, type):
        raise ValueError(f"Metric {identifier.__name__} is a class; pass an instance, e.g. "
                         f"metrics=[{identifier.__name__}()]")
    if isinstance(identifier, str) and identifier in _OBJECT_STRINGS:
        identifier = _OBJECT_STRINGS[identifier]()  # tf.keras: metrics=['AUC'] logs `auc`
    if isinstance(identifier, EngineMetric):
        kind, entry = identifier.engine_entry(loss, units)  # raises when the object does not fit the model
        if kind == "mean":
            _check_target_kind(identifier.name, split_entry(entry)[0], loss)
        return identifier.name, identifier
    if is_streaming(identifier):
        key = getattr(identifier, "name", None)
        if not isinstance(key, str) or not key:
            raise ValueError(f"Metric object {identifier!r} needs a `name` (str) for its log key")
        reset = getattr(identifier, "reset_state", None) or getattr(identifier, "reset_states", None)
        if not callable(reset):
            raise ValueError(f"Metric object {key!r} needs a reset_state() (or reset_states()) method")
        return key, identifier
    if isinstance(identifier, str):
        key = name = identifier
    elif callable(identifier) and getattr(identifier, "__name__", None):
        key = name = identifier.__name__
        if not is_builtin(identifier):
            return key, identifier  # a custom metric function
    else:
        raise ValueError(f"Could not interpret metric {identifier!r}; expected a name such as 'acc', a "
                         "function metric(y_true, y_pred) or a metric object (fastfit.metrics.Metric)")
    sparse = loss in SPARSE_LOSSES
    if loss in FROM_LOGITS_LOSSES:
        # A tf.keras loss object: 'acc' and 'crossentropy' follow tf.keras's choice by output size and target
        # kind, and binary_accuracy thresholds y_pred (the logits) at 0.5, as tf.keras's does.
        if name in _ACCURACY + _CROSSENTROPY:
            kind = "accuracy" if name in _ACCURACY else "crossentropy"
            prefix = "sparse_categorical" if sparse else "binary" if units == 1 else "categorical"
            name = f"{prefix}_{kind}"
        if name == "binary_accuracy" and not sparse:
            return key, BinaryAccuracy(name=key, threshold=0.5)
    if name in _ACCURACY:
        if sparse:
            name = "sparse_categorical_accuracy"
        elif units == 1 or loss == "binary_crossentropy":
            name = "binary_accuracy"
        else:
            name = "categorical_accuracy"
    elif name in _CROSSENTROPY:
        if sparse:
            name = "sparse_categorical_crossentropy"
        elif units == 1 or loss == "binary_crossentropy":
            name = "binary_crossentropy"
        else:
            name = "categorical_crossentropy"
    else:
        name = _losses.ALIASES.get(name, name)
    if name not in METRICS:
        raise ValueError(f"Unknown metric {identifier!r}; expected 'acc', 'accuracy', one of "
                         f"{sorted(m for m in METRICS if m not in LOSSES)}, a loss name, or a custom metric "
                         "(pass the function or object itself, not its name)")
    _check_target_kind(identifier, name, loss)
    return key, name


def _check_target_kind(identifier, name, loss):
    """Raise ValueError when metric `name` takes integer labels and the loss does not (or the other way)."""
    sparse = loss in SPARSE_LOSSES
    takes_labels = name in SPARSE_METRICS or name == "sparse_categorical_crossentropy"
    if takes_labels != sparse:
        raise ValueError(f"Metric {identifier!r} cannot be computed with loss {loss!r}: "
                         + ("integer targets need a sparse metric such as 'sparse_categorical_accuracy'"
                            if sparse else "it needs integer targets and the sparse_categorical_crossentropy loss"))
