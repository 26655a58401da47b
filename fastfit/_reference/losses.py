"""Losses of the reference engine: per-sample values, the batch loss and its gradient.

Keras 2.2 (TensorFlow backend) definitions with eps = 1e-7, reducing over the last axis. Values and
gradients are computed in float64 whatever the network dtype (the gradient is cast when written out).
Where a clip is active the gradient through it is 0; at the clip bounds it passes, as TensorFlow's does.

The batch loss follows Keras 2.2's sample-weight rule: without weights `mean_i l_i`, with weights
`sum_i w_i l_i / count(w_i != 0)` (0 when every weight is 0). Softmax + (sparse) categorical crossentropy
and sigmoid + binary crossentropy are fused: the gradient is then w.r.t. the pre-activation.

The from-logits crossentropies (`FROM_LOGITS_LOSSES`, tf.keras's `from_logits=True`) take the logits z as `p`
and are computed in log-sum-exp form without clipping (TensorFlow's `softmax_cross_entropy_with_logits` and
`sigmoid_cross_entropy_with_logits`); their gradient is softmax(z) * sum(y) - y, or (sigmoid(z) - y) / units.
"""
import numpy as np

from fastfit.contract.checks import check_name
from fastfit.contract.names import ENGINE_LOSSES, EPSILON, SPARSE_LOSSES

LOG2 = float(np.log(2.0))
# Fused pairs: loss name -> the activation it fuses with.
FUSED_ACTIVATION = {"categorical_crossentropy": "softmax", "sparse_categorical_crossentropy": "softmax",
                    "binary_crossentropy": "sigmoid"}


def _inside(v, lo, hi):
    """Where clip(v, lo, hi) passes the gradient of v (as 0/1 floats)."""
    return ((v >= lo) & (v <= hi)).astype(np.float64)


def _one_hot(labels, like):
    hot = np.zeros_like(like)
    np.put_along_axis(hot, labels[..., None], 1.0, axis=-1)
    return hot


# Each kernel takes float64 targets `y` (int64 labels for the sparse loss) and predictions `p`, and returns
# (per-sample loss, d loss_i / d p or None). `grad` asks for the derivative.

def _mse(y, p, grad):
    d = p - y
    return np.mean(d * d, axis=-1), (2 * d / d.shape[-1] if grad else None)


def _mae(y, p, grad):
    d = p - y
    return np.mean(np.abs(d), axis=-1), (np.sign(d) / d.shape[-1] if grad else None)


def _mape(y, p, grad):
    d = p - y
    s = np.maximum(np.abs(y), EPSILON)
    loss = 100 * np.mean(np.abs(d) / s, axis=-1)
    return loss, (100 * np.sign(d) / s / d.shape[-1] if grad else None)


def _msle(y, p, grad):
    pc = np.maximum(p, EPSILON)
    d = np.log(pc + 1) - np.log(np.maximum(y, EPSILON) + 1)
    loss = np.mean(d * d, axis=-1)
    return loss, (2 * d / (pc + 1) * (p >= EPSILON) / d.shape[-1] if grad else None)


def _squared_hinge(y, p, grad):
    d = np.maximum(1 - y * p, 0)
    return np.mean(d * d, axis=-1), (-2 * d * y / d.shape[-1] if grad else None)


def _hinge(y, p, grad):
    d = np.maximum(1 - y * p, 0)
    return np.mean(d, axis=-1), (-y * (d > 0) / d.shape[-1] if grad else None)


def _categorical_hinge(y, p, grad):
    pos = np.sum(y * p, axis=-1)
    q = (1 - y) * p
    j = np.argmax(q, axis=-1)[..., None]
    loss = np.maximum(np.take_along_axis(q, j, axis=-1)[..., 0] - pos + 1, 0)
    if not grad:
        return loss, None
    # d neg / d p is (1 - y_j) at the argmax j (which may be the true class, when its q = 0 is the largest).
    g = (1 - y) * _one_hot(j[..., 0], p) - y
    return loss, g * (loss > 0)[..., None]


def _logcosh(y, p, grad):
    # log(cosh(d)) = d + softplus(-2d) - log(2), with a stable softplus.
    d = p - y
    t = -2 * d
    softplus = np.maximum(t, 0) + np.log1p(np.exp(-np.abs(t)))
    loss = np.mean(d + softplus - LOG2, axis=-1)
    return loss, (np.tanh(d) / d.shape[-1] if grad else None)


def _categorical_crossentropy(y, p, grad):
    # q = p / sum(p), clipped to [eps, 1 - eps]; loss = -sum(y log q).
    s = np.sum(p, axis=-1, keepdims=True)
    q = p / s
    loss = -np.sum(y * np.log(np.clip(q, EPSILON, 1 - EPSILON)), axis=-1)
    if not grad:
        return loss, None
    inside = _inside(q, EPSILON, 1 - EPSILON)
    dq = -y * inside / np.where(inside > 0, q, 1)
    # Through the normalisation: d q_j / d p_k = (delta_jk - q_j) / s.
    return loss, (dq - np.sum(dq * q, axis=-1, keepdims=True)) / s


def _sparse_categorical_crossentropy(labels, p, grad):
    # TensorFlow backend: logits = log(clip(p)), loss = softmax cross-entropy of the label
    # = log(sum_j clip(p_j)) - log(clip(p_label)).
    pc = np.clip(p, EPSILON, 1 - EPSILON)
    s = np.sum(pc, axis=-1)
    pl = np.take_along_axis(pc, labels[..., None], axis=-1)[..., 0]
    loss = np.log(s) - np.log(pl)
    if not grad:
        return loss, None
    g = np.broadcast_to((1 / s)[..., None], p.shape) - _one_hot(labels, p) / pl[..., None]
    return loss, g * _inside(p, EPSILON, 1 - EPSILON)


def _binary_crossentropy(y, p, grad):
    pc = np.clip(p, EPSILON, 1 - EPSILON)
    loss = -np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc), axis=-1)
    if not grad:
        return loss, None
    g = (pc - y) / (pc * (1 - pc)) / p.shape[-1]
    return loss, g * _inside(p, EPSILON, 1 - EPSILON)


def _kullback_leibler_divergence(y, p, grad):
    yc = np.clip(y, EPSILON, 1)
    pc = np.clip(p, EPSILON, 1)
    loss = np.sum(yc * np.log(yc / pc), axis=-1)
    return loss, (-yc / pc * _inside(p, EPSILON, 1) if grad else None)


def _poisson(y, p, grad):
    loss = np.mean(p - y * np.log(p + EPSILON), axis=-1)
    return loss, ((1 - y / (p + EPSILON)) / p.shape[-1] if grad else None)


def _cosine_proximity(y, p, grad):
    # -sum(l2n(y) * l2n(p)), l2n(v) = v / sqrt(max(sum(v^2), 1e-12)).
    ny = np.sqrt(np.maximum(np.sum(y * y, axis=-1, keepdims=True), 1e-12))
    pp = np.sum(p * p, axis=-1, keepdims=True)
    npn = np.sqrt(np.maximum(pp, 1e-12))
    loss = -np.sum(y * p, axis=-1, keepdims=True) / (ny * npn)
    if not grad:
        return loss[..., 0], None
    # The norm of p has a gradient only where the max(., 1e-12) is not active.
    g = -y / (ny * npn) - loss * p / (npn * npn) * (pp > 1e-12)
    return loss[..., 0], g


def _log_softmax(z):
    shifted = z - np.max(z, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _categorical_crossentropy_from_logits(y, z, grad):
    log_q = _log_softmax(z)
    loss = -np.sum(y * log_q, axis=-1)
    return loss, (np.exp(log_q) * np.sum(y, axis=-1, keepdims=True) - y if grad else None)


def _sparse_categorical_crossentropy_from_logits(labels, z, grad):
    log_q = _log_softmax(z)
    loss = -np.take_along_axis(log_q, labels[..., None], axis=-1)[..., 0]
    return loss, (np.exp(log_q) - _one_hot(labels, z) if grad else None)


def _binary_crossentropy_from_logits(y, z, grad):
    # max(z, 0) - z y + log(1 + exp(-|z|)), stable for any z.
    loss = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), axis=-1)
    if not grad:
        return loss, None
    sigmoid = np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))
    return loss, (sigmoid - y) / z.shape[-1]


_KERNELS = {
    "mean_squared_error": _mse,
    "mean_absolute_error": _mae,
    "mean_absolute_percentage_error": _mape,
    "mean_squared_logarithmic_error": _msle,
    "squared_hinge": _squared_hinge,
    "hinge": _hinge,
    "categorical_hinge": _categorical_hinge,
    "logcosh": _logcosh,
    "categorical_crossentropy": _categorical_crossentropy,
    "sparse_categorical_crossentropy": _sparse_categorical_crossentropy,
    "binary_crossentropy": _binary_crossentropy,
    "kullback_leibler_divergence": _kullback_leibler_divergence,
    "poisson": _poisson,
    "cosine_proximity": _cosine_proximity,
    "categorical_crossentropy_from_logits": _categorical_crossentropy_from_logits,
    "sparse_categorical_crossentropy_from_logits": _sparse_categorical_crossentropy_from_logits,
    "binary_crossentropy_from_logits": _binary_crossentropy_from_logits,
}


def _fused(name, y, p):
    """Per-sample loss and its gradient w.r.t. the pre-activation of the fused activation."""
    pc = np.clip(p, EPSILON, 1 - EPSILON)
    if name == "categorical_crossentropy":
        loss = -np.sum(y * np.log(pc), axis=-1)
        return loss, p * np.sum(y, axis=-1, keepdims=True) - y
    if name == "sparse_categorical_crossentropy":
        loss = -np.log(np.take_along_axis(pc, y[..., None], axis=-1)[..., 0])
        return loss, p - _one_hot(y, p)
    loss = -np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc), axis=-1)
    return loss, (p - y) / p.shape[-1]


def values(name, y, p, grad=False, fused=False):
    """Per-sample losses (float64) and optionally their derivative.

    Arguments:
        name: canonical loss name.
        y: targets of p's shape, or int64 labels of shape p.shape[:-1] for the sparse loss.
        p: predictions (the network output), any float dtype.
        grad: also return d l_i / d p (float64, p's shape).
        fused: `name` is fused with the activation before it; the derivative is then w.r.t. the
            pre-activation (only for the pairs in `FUSED_ACTIVATION`).

    Returns:
        (loss per sample, derivative or None).
    """
    p = np.asarray(p, dtype=np.float64)
    if name not in SPARSE_LOSSES:
        y = np.asarray(y, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if fused:
            loss, g = _fused(name, y, p)
            return loss, (g if grad else None)
        return _KERNELS[name](y, p, grad)


def weight_factors(rows, sample_weight, count=None):
    """Per-row factor c_i with loss_b = sum_i c_i l_i (Keras 2.2 sample-weight rule), in float64.

    `count`: the divisor (the rows, or with sample weights the non-zero weights) of the global batch these
    rows are a share of (distributed training); None: of these rows."""
    if sample_weight is None:
        total = rows if count is None else count
        return np.full(rows, 1.0 / total) if total else np.zeros(rows)
    w = np.asarray(sample_weight, dtype=np.float64)
    count = np.count_nonzero(w) if count is None else count
    return w / count if count else np.zeros(rows)


def batch_loss(name, y, p, sample_weight=None, fused=False, grad_out=None, count=None):
    """The batch loss, and optionally its gradient.

    Arguments:
        name: canonical loss name.
        y: (rows, units) targets or int64 (rows,) labels for the sparse loss.
        p: (rows, units) network output.
        sample_weight: None or (rows,) weights.
        fused: see `values`.
        grad_out: None, or a (rows, units) array that receives d loss_b / d p (d / d pre-activation when
            fused), cast to its dtype.
        count: see `weight_factors` (distributed training: these rows' share of the global batch loss).

    Returns:
        The batch loss as a Python float (NaN/inf pass through; rows with weight 0 never contribute).
    """
    loss, g = values(name, y, p, grad=grad_out is not None, fused=fused)
    c = weight_factors(len(loss), sample_weight, count)
    with np.errstate(invalid="ignore", over="ignore"):
        if grad_out is not None:
            np.multiply(g, c[:, None], out=grad_out, casting="unsafe")
        return float(np.sum(np.where(c != 0, c * loss, 0.0)))


def per_sample(name, y_true, y_pred):
    """Per-sample loss of NumPy arrays, reduced over the last axis (the functions of `fastfit.losses`).

    Arguments:
        name: canonical loss name.
        y_true: targets broadcastable to y_pred's shape; for the sparse loss integer labels of shape
            y_pred.shape[:-1] (a trailing axis of size 1 is accepted).
        y_pred: predictions, at least 1-D.

    Returns:
        Array of shape y_pred.shape[:-1], in y_pred's float dtype (float64 for other dtypes).

    Raises:
        ValueError: unknown name, or shapes/labels that do not fit.
    """
    check_name(name, ENGINE_LOSSES, "loss")
    y_pred = np.asarray(y_pred)
    if y_pred.ndim < 1:
        raise ValueError(f"y_pred: expected an array with at least 1 dimension, got shape {y_pred.shape}")
    y = check_targets(name, y_true, y_pred)
    loss, _ = values(name, y, y_pred)
    dtype = y_pred.dtype if np.issubdtype(y_pred.dtype, np.floating) else np.float64
    return np.asarray(loss, dtype=dtype)


def check_targets(name, y_true, y_pred):
    """y_true checked against y_pred: labels (int64) for the sparse loss, else broadcast to its shape."""
    y_true = np.asarray(y_true)
    if name in SPARSE_LOSSES:
        labels = y_true
        if labels.shape == y_pred.shape[:-1] + (1,):
            labels = labels[..., 0]
        if labels.shape != y_pred.shape[:-1]:
            raise ValueError(f"y_true: expected integer labels of shape {y_pred.shape[:-1]}, "
                             f"got shape {y_true.shape}")
        labels = labels.astype(np.int64)
        units = y_pred.shape[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= units):
            raise ValueError(f"y_true: expected labels in [0, {units}), got values in "
                             f"[{labels.min()}, {labels.max()}]")
        return labels
    try:
        return np.broadcast_to(y_true, y_pred.shape)
    except ValueError:
        raise ValueError(f"y_true: expected a shape broadcastable to {y_pred.shape}, "
                         f"got {y_true.shape}") from None
