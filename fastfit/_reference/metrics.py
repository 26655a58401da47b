"""Metrics of the reference engine (Keras 2.2 definitions), as per-sample values and unweighted batch means.

Accuracies compare argmaxes (first maximum on ties); the top-k metrics (k = 5) count the target as a hit
when fewer than k scores are strictly greater than its own (TensorFlow's `in_top_k`). Any loss name is
also a metric: its unfused per-sample value.
"""
import numpy as np

from fastfit._reference import losses
from fastfit._reference.checks import check_name
from fastfit._reference.names import ENGINE_LOSSES, ENGINE_METRICS, SPARSE_METRICS, THRESHOLD_ACCURACY

TOP_K = 5


def _in_top_k(p, target):
    """1.0 where fewer than TOP_K entries of a row of p are strictly greater than p[row, target]."""
    score = np.take_along_axis(p, target[..., None], axis=-1)
    return (np.count_nonzero(p > score, axis=-1) < TOP_K).astype(np.float64)


def values(name, y, p):
    """Per-sample metric values (float64).

    Arguments:
        name: canonical metric name.
        y: targets of p's shape, or int64 labels of shape p.shape[:-1] for the sparse metrics.
        p: predictions (the network output).

    Returns:
        Array of shape p.shape[:-1].
    """
    if name in ENGINE_LOSSES:
        return losses.values(name, y, p)[0]
    if name == THRESHOLD_ACCURACY:
        return np.mean(y == (p > 0.5), axis=-1, dtype=np.float64)
    if name == "binary_accuracy":
        # np.round rounds half to even, like K.round.
        return np.mean(y == np.round(p), axis=-1, dtype=np.float64)
    if name == "categorical_accuracy":
        return (np.argmax(y, axis=-1) == np.argmax(p, axis=-1)).astype(np.float64)
    if name == "sparse_categorical_accuracy":
        return (y == np.argmax(p, axis=-1)).astype(np.float64)
    if name == "top_k_categorical_accuracy":
        return _in_top_k(p, np.argmax(y, axis=-1))
    return _in_top_k(p, y)  # sparse_top_k_categorical_accuracy


def batch_metric(name, y, p):
    """The unweighted mean over the batch of metric `name` (a Python float)."""
    return float(np.mean(values(name, y, p))) if len(p) else 0.0


def per_sample(name, y_true, y_pred):
    """Per-sample metric of NumPy arrays (the functions of `fastfit.metrics`).

    Arguments:
        name: canonical metric name.
        y_true: targets broadcastable to y_pred's shape, or integer labels of shape y_pred.shape[:-1]
            (a trailing axis of size 1 accepted) for the sparse metrics.
        y_pred: predictions, at least 1-D.

    Returns:
        Array of shape y_pred.shape[:-1], in y_pred's float dtype (float64 for other dtypes).

    Raises:
        ValueError: unknown name, or shapes/labels that do not fit.
    """
    check_name(name, ENGINE_METRICS, "metric")
    y_pred = np.asarray(y_pred)
    if y_pred.ndim < 1:
        raise ValueError(f"y_pred: expected an array with at least 1 dimension, got shape {y_pred.shape}")
    # The sparse metrics share the label checks of the sparse loss.
    kind = "sparse_categorical_crossentropy" if name in SPARSE_METRICS else "mean_squared_error"
    y = losses.check_targets(kind, y_true, y_pred)
    dtype = y_pred.dtype if np.issubdtype(y_pred.dtype, np.floating) else np.float64
    return np.asarray(values(name, y, y_pred), dtype=dtype)
