"""Dense (fully connected) layer passes of the reference engine: `y = x @ W + b` and its gradients."""
import numpy as np


def forward(x, W, b, out=None):
    """Affine map of a batch.

    Arguments:
        x: (rows, in) batch; W: (in, out) kernel; b: (out,) bias or None.
        out: optional preallocated (rows, out) array.

    Returns:
        `x @ W + b` (`out` when given).
    """
    out = np.matmul(x, W, out=out)
    if b is not None:
        out += b
    return out


def backward(x, W, grad, dW, db, dx=None):
    """Gradients of the affine map, written into preallocated arrays.

    Arguments:
        x: (rows, in) input of the forward pass; W: (in, out) kernel; grad: (rows, out) d loss / d y.
        dW: (in, out) array receiving `x.T @ grad`, or None (a frozen layer); db: (out,) array receiving
            `grad.sum(0)`, or None (no bias, or frozen).
        dx: None (first layer: the input gradient is not needed) or a (rows, in) array receiving
            `grad @ W.T`.

    Returns:
        `dx`.
    """
    if dW is not None:
        np.matmul(x.T, grad, out=dW)
    if db is not None:
        np.sum(grad, axis=0, out=db)
    if dx is not None:
        np.matmul(grad, W.T, out=dx)
    return dx
