"""Activations of the reference engine: forward values and backward (input gradient) passes.

Keras 2.2 definitions, element-wise except softmax (over the last axis, max-subtracted). Every form is
chosen so that large inputs of either sign give finite results (sigmoid and softplus through exp(-|x|),
elu/selu through expm1 of the non-positive part); only `exponential` can overflow, to inf, as exp does.
Arrays keep their dtype: float32 in, float32 out.
"""
import numpy as np

from fastfit.contract.checks import check_name
from fastfit.contract.names import ACTIVATIONS

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(x, out):
    # 1 / (1 + exp(-x)) for x >= 0 and exp(x) / (1 + exp(x)) otherwise, both from e = exp(-|x|) <= 1.
    e = np.exp(-np.abs(x))
    np.divide(np.where(x >= 0, 1, e), 1 + e, out=out)
    return out


def _softplus(x, out):
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)).
    np.log1p(np.exp(-np.abs(x)), out=out)
    out += np.maximum(x, 0)
    return out


def forward(name, x, out=None):
    """Apply the activation `name` to `x`.

    Arguments:
        name: canonical activation name.
        x: float array (softmax acts on the last axis).
        out: optional preallocated array of x's shape and dtype (must not be `x` itself).

    Returns:
        The activated array (`out` when given).

    Raises:
        ValueError: unknown activation name.
    """
    check_name(name, ACTIVATIONS, "activation")
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if out is None:
        out = np.empty_like(x)
    dt = x.dtype.type
    if name == "linear":
        np.copyto(out, x)
    elif name == "relu":
        np.maximum(x, 0, out=out)
    elif name == "sigmoid":
        _sigmoid(x, out)
    elif name == "tanh":
        np.tanh(x, out=out)
    elif name == "softmax":
        np.subtract(x, x.max(axis=-1, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=-1, keepdims=True)
    elif name == "elu":
        # expm1 of min(x, 0) only, so large positive x never reach exp.
        np.expm1(np.minimum(x, 0), out=out)
        np.copyto(out, x, where=x > 0)
    elif name == "selu":
        np.expm1(np.minimum(x, 0), out=out)
        out *= dt(SELU_ALPHA)
        np.copyto(out, x, where=x > 0)
        out *= dt(SELU_SCALE)
    elif name == "softplus":
        _softplus(x, out)
    elif name == "softsign":
        np.divide(x, 1 + np.abs(x), out=out)
    elif name == "hard_sigmoid":
        np.multiply(x, dt(0.2), out=out)
        out += dt(0.5)
        np.clip(out, 0, 1, out=out)
    else:  # exponential
        with np.errstate(over="ignore"):
            np.exp(x, out=out)
    return out


def backward(name, x, y, grad, out=None):
    """Gradient w.r.t. the input of the activation, given the gradient w.r.t. its output.

    Arguments:
        name: canonical activation name.
        x: the input the forward pass saw.
        y: the output of the forward pass (`forward(name, x)`).
        grad: gradient of the loss w.r.t. `y`.
        out: optional array of grad's shape and dtype to write into (may be `grad` itself).

    Returns:
        The gradient w.r.t. `x` (`out` when given). Relu has derivative 0 at 0, hard_sigmoid 0 outside
        (-2.5, 2.5).

    Raises:
        ValueError: unknown activation name.
    """
    check_name(name, ACTIVATIONS, "activation")
    if out is None:
        out = np.empty_like(grad)
    dt = grad.dtype.type
    if name == "linear":
        np.copyto(out, grad)
    elif name == "relu":
        np.multiply(grad, x > 0, out=out)
    elif name == "sigmoid":
        np.multiply(grad, y * (1 - y), out=out)
    elif name == "tanh":
        np.multiply(grad, 1 - y * y, out=out)
    elif name == "softmax":
        # Jacobian-vector product per row: y * (g - sum(g * y)).
        s = np.einsum("...j,...j->...", grad, y)[..., None]
        np.subtract(grad, s, out=out)
        out *= y
    elif name == "elu":
        # d/dx expm1(x) = exp(x) = y + 1 for x <= 0.
        np.multiply(grad, np.where(x > 0, dt(1), y + 1), out=out)
    elif name == "selu":
        # d/dx scale*alpha*expm1(x) = scale*alpha*exp(x) = y + scale*alpha for x <= 0.
        np.multiply(grad, np.where(x > 0, dt(SELU_SCALE), y + dt(SELU_SCALE * SELU_ALPHA)), out=out)
    elif name == "softplus":
        np.multiply(grad, _sigmoid(x, np.empty_like(x)), out=out)
    elif name == "softsign":
        d = 1 + np.abs(x)
        np.divide(grad, d * d, out=out)
    elif name == "hard_sigmoid":
        np.multiply(grad, np.where((x > -2.5) & (x < 2.5), dt(0.2), dt(0)), out=out)
    else:  # exponential
        np.multiply(grad, y, out=out)
    return out
