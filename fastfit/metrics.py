"""Metrics (Keras 2 names) and custom metrics.

`compile(metrics=[...])` takes strings or functions of this module or `fastfit.losses`, which the engines
compute without the GIL, and custom metrics, which run in Python at each batch end: a function
`metric(y_true, y_pred)` of NumPy arrays, or an object with `update_state` / `result` / `reset_state` (such
as a subclass of `Metric`). The log key is the string the user passed (`'acc'` → `acc`, `'accuracy'` →
`accuracy`), a function's `__name__` or an object's `name`. `'acc'` and `'accuracy'` resolve to binary,
categorical or sparse categorical accuracy from the loss and output size, as Keras does.
"""
import re

from fastfit import losses as _losses
from fastfit._reference import metrics as _twin  # the NumPy twins of the engine kernels
from fastfit.losses import per_sample_function
from fastfit._reference.names import (FROM_LOGITS_LOSSES, LOSSES, METRICS, SPARSE_LOSSES, SPARSE_METRICS,
                                     THRESHOLD_ACCURACY)

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

    def __init__(self, name: "str | None" = None, dtype=None):
        self.name = name or re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()
        self.dtype = dtype

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement update_state(y_true, y_pred, "
                                  "sample_weight=None)")

    def result(self) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement result()")

    def reset_state(self) -> None:
        if type(self).reset_states is not Metric.reset_states:  # a subclass written with the older name
            return self.reset_states()
        raise NotImplementedError(f"{type(self).__name__} must implement reset_state()")

    def reset_states(self) -> None:
        """The Keras 2 / tf.keras 2.0-2.4 spelling of `reset_state`."""
        self.reset_state()

    def __call__(self, y_true, y_pred, sample_weight=None) -> float:
        """Update with one batch and return the result so far (as tf.keras does)."""
        self.update_state(y_true, y_pred, sample_weight=sample_weight)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


def is_streaming(metric) -> bool:
    """True for a metric object of the class form (`update_state` and `result` methods)."""
    return (not isinstance(metric, type) and callable(getattr(metric, "update_state", None))
            and callable(getattr(metric, "result", None)))


def is_builtin(identifier) -> bool:
    """True for a metric name (or alias) fastfit's engines compute, or a function of this module or losses."""
    if isinstance(identifier, str):
        return _losses.ALIASES.get(identifier, identifier) in METRICS or identifier in _ACCURACY + _CROSSENTROPY
    name = getattr(identifier, "__name__", None)
    if not isinstance(name, str) or not name:
        return False
    return globals().get(name) is identifier or getattr(_losses, name, None) is identifier


def resolve(identifier, loss, units):
    """Return `(log_key, metric)` for one entry of `compile(metrics=...)`.

    `metric` is the canonical name of a built-in metric (a str), or the custom metric itself: a function
    `f(y_true, y_pred)` or an object of the class form (see `Metric`).

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
            return key, THRESHOLD_ACCURACY
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
    takes_labels = name in SPARSE_METRICS or name == "sparse_categorical_crossentropy"
    if takes_labels != sparse:
        raise ValueError(f"Metric {identifier!r} cannot be computed with loss {loss!r}: "
                         + ("integer targets need a sparse metric such as 'sparse_categorical_accuracy'"
                            if sparse else "it needs integer targets and the sparse_categorical_crossentropy loss"))
    return key, name
