"""Metrics of the reference engine (Keras 2.2 definitions), as per-sample values and unweighted batch means.

Accuracies compare argmaxes (first maximum on ties); the top-k metrics (k = 5) count the target as a hit
when fewer than k scores are strictly greater than its own (TensorFlow's `in_top_k`). Any loss name is
also a metric: its unfused per-sample value.

Two metrics take a parameter (an engine metric entry `(name, param)`, see `fastfit.contract.checks.split_entry`):
binary accuracy with a threshold counts `y == (p > threshold)` (tf.keras `BinaryAccuracy`) instead of
`y == round(p)`, and the top-k metrics take their k.

The confusion metric objects (`TruePositives` ... `AUC`) accumulate a threshold histogram per pass
(`threshold_histogram`): for sorted thresholds t_0..t_{T-1}, element counts by bucket b = #{i : t_i < p}
for positive (y != 0) and negative targets, plus the count of predictions outside [0, 1] (tf.keras refuses
those). `confusion_counts` turns it into TP/FP/TN/FN per threshold (p > t_i is predicted positive).
"""
import numpy as np

from fastfit._reference import losses
from fastfit.contract.checks import check_name, histogram_size, split_entry
from fastfit.contract.names import ENGINE_LOSSES, ENGINE_METRICS, SPARSE_METRICS

TOP_K = 5
PARAM_METRICS = ("binary_accuracy", "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy")


def _in_top_k(p, target, k=TOP_K):
    """1.0 where fewer than k entries of a row of p are strictly greater than p[row, target]."""
    score = np.take_along_axis(p, target[..., None], axis=-1)
    return (np.count_nonzero(p > score, axis=-1) < k).astype(np.float64)


def values(name, y, p, param=None):
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
    if name == "binary_accuracy":
        if param is not None:
            return np.mean(y == (p > param), axis=-1, dtype=np.float64)
        # np.round rounds half to even, like K.round.
        return np.mean(y == np.round(p), axis=-1, dtype=np.float64)
    if name == "categorical_accuracy":
        return (np.argmax(y, axis=-1) == np.argmax(p, axis=-1)).astype(np.float64)
    if name == "sparse_categorical_accuracy":
        return (y == np.argmax(p, axis=-1)).astype(np.float64)
    k = TOP_K if param is None else int(param)
    if name == "top_k_categorical_accuracy":
        return _in_top_k(p, np.argmax(y, axis=-1), k)
    return _in_top_k(p, y, k)  # sparse_top_k_categorical_accuracy


def batch_metric(entry, y, p):
    """The unweighted mean over the batch of the engine metric `entry` (a Python float)."""
    name, param = split_entry(entry)
    return float(np.mean(values(name, y, p, param))) if len(p) else 0.0


def top_k_mask(p, k):
    """True for the k largest entries of each row of p (on ties the lower index first, as tf.nn.top_k)."""
    greater = np.count_nonzero(p[..., None, :] > p[..., :, None], axis=-1)
    columns = np.arange(p.shape[-1])
    earlier_ties = np.count_nonzero((p[..., None, :] == p[..., :, None]) & (columns < columns[:, None]), axis=-1)
    return greater + earlier_ties < k


def threshold_histogram(y, p, thresholds, class_id=None, top_k=None, sample_weight=None):
    """The threshold histogram (see the module docstring) of one batch.

    Arguments:
        y, p: targets and predictions of one shape (rows, units); `y != 0` is a positive.
        thresholds: sorted float64 array.
        class_id: None, or the one column to count. top_k: None, or count only each row's k largest
            predictions (the others are predicted negative at every threshold).
        sample_weight: None, or weights broadcastable to p's shape.

    Returns:
        float64 array of `histogram_size(thresholds)`.
    """
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y)
    T = len(thresholds)
    hist = np.zeros(histogram_size(thresholds))
    weights = np.broadcast_to(1.0 if sample_weight is None else np.asarray(sample_weight, np.float64), p.shape)
    hist[-1] = np.count_nonzero(~((p >= 0) & (p <= 1)))  # NaN counts as out of range, as in tf.keras
    if top_k is not None:
        p = np.where(top_k_mask(p, top_k), p, -np.inf)
    if class_id is not None:
        p, y, weights = p[..., class_id], y[..., class_id], weights[..., class_id]
    bucket = np.searchsorted(thresholds, p, side="left")  # the number of thresholds below p
    bucket[np.isnan(p)] = 0  # p > t is False for every threshold
    positive = y != 0
    hist[:T + 1] = np.bincount(bucket[positive], weights[positive], minlength=T + 1)
    hist[T + 1:2 * T + 2] = np.bincount(bucket[~positive], weights[~positive], minlength=T + 1)
    return hist


def confusion_counts(hist):
    """(tp, fp, tn, fn), float64 arrays of one value per threshold, from a threshold histogram."""
    T = (len(hist) - 3) // 2
    positives_above = np.cumsum(hist[T::-1])[::-1]  # [i]: positives in buckets i..T
    negatives_above = np.cumsum(hist[2 * T + 1:T:-1])[::-1]
    tp, fp = positives_above[1:], negatives_above[1:]
    return tp, fp, negatives_above[0] - fp, positives_above[0] - tp


def per_sample(name, y_true, y_pred, param=None):
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
    return np.asarray(values(name, y, y_pred, param), dtype=dtype)
