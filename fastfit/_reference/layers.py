"""The reference engine's ops beyond Dense, activation and dropout (`names.LAYER_OPS`), in vectorised NumPy.

Each op has the interface of `loop._Dense`: `reserve(rows, dtype, need_dx)`, `forward(x, rows, training,
step)`, `backward(grad, rows, need_dx)`; ops with trained parameters list them in `params` and their gradient
arrays in `grads` (empty when frozen). Statistics (batch means and variances, penalties) are computed in
float64. The Cython kernels (`_ext/_layers.pyx`) compute the same formulas.
"""
import numpy as np

from fastfit._reference import rng
from fastfit.contract.names import SELU_ALPHA, SELU_SCALE


class _Op:
    params = ()
    grads = ()
    trainable = False

    def reserve(self, rows, dtype, need_dx):
        self.out = np.empty((rows, self.n_out), dtype)


class ActivityRegularization(_Op):
    """Identity; adds l1 * sum|x| + l2 * sum x**2 over the batch to the loss (`penalty` after each forward)."""

    def __init__(self, l1, l2):
        self.l1, self.l2 = l1, l2

    def forward(self, x, rows, training, step):
        self.x = x
        x64 = x.astype(np.float64)
        self.penalty = self.l1 * np.abs(x64).sum() + self.l2 * np.square(x64).sum()
        return x

    def backward(self, grad, rows, need_dx):
        dt = grad.dtype.type
        grad += dt(self.l1) * np.sign(self.x) + dt(2 * self.l2) * self.x
        return grad


class Relu(_Op):
    """Keras 2.2's `K.relu(x, alpha, max_value, threshold)`: x where x > threshold (else 0), clipped to
    [0, max_value] when a maximum is given, minus alpha * max(threshold - x, 0)."""

    def __init__(self, negative_slope, max_value, threshold):
        self.alpha, self.max_value, self.threshold = negative_slope, max_value, threshold

    def forward(self, x, rows, training, step):
        self.x = x
        dt = x.dtype.type
        out = np.where(x > dt(self.threshold), x, dt(0))
        if self.max_value is not None:
            np.clip(out, 0, dt(self.max_value), out=out)
        out -= dt(self.alpha) * np.maximum(dt(self.threshold) - x, 0)
        self.out[:rows] = out
        return self.out[:rows]

    def backward(self, grad, rows, need_dx):
        x, dt = self.x, grad.dtype.type
        slope = (x > dt(self.threshold)).astype(grad.dtype)
        if self.max_value is not None:
            slope *= (x > 0) & (x < dt(self.max_value))
        slope += dt(self.alpha) * (x < dt(self.threshold))
        grad *= slope
        return grad


class Elu(_Op):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    def __init__(self, alpha):
        self.alpha = alpha

    def forward(self, x, rows, training, step):
        self.x = x
        dt = x.dtype.type
        out = self.out[:rows]
        np.expm1(np.minimum(x, 0), out=out)
        out *= dt(self.alpha)
        np.copyto(out, x, where=x > 0)
        self.y = out
        return out

    def backward(self, grad, rows, need_dx):
        dt = grad.dtype.type
        grad *= np.where(self.x > 0, dt(1), self.y + dt(self.alpha))
        return grad


class PReLU(_Op):
    """x for x > 0, alpha * x otherwise, alpha per feature (or one shared alpha); alpha is trained."""

    def __init__(self, alpha, trainable):
        self.alpha, self.trainable = alpha, trainable
        self.params = [alpha] if trainable else []
        self.galpha = np.zeros_like(alpha)
        self.grads = [self.galpha] if trainable else []

    def reserve(self, rows, dtype, need_dx):
        self.out = np.empty((rows, self.n_out), dtype)
        self.dx = np.empty((rows, self.n_out), dtype) if need_dx else None

    def forward(self, x, rows, training, step):
        self.x = x
        return np.multiply(x, np.where(x > 0, x.dtype.type(1), self.alpha), out=self.out[:rows])

    def backward(self, grad, rows, need_dx):
        x = self.x
        if self.trainable:
            part = (grad * np.minimum(x, 0)).sum(axis=0, dtype=np.float64)
            self.galpha[...] = part.sum() if self.alpha.shape[0] == 1 else part
        if not need_dx:
            return None
        return np.multiply(grad, np.where(x > 0, grad.dtype.type(1), self.alpha), out=self.dx[:rows])


class BatchNormalization(_Op):
    """Batch statistics in training (biased variance; the moving statistics move towards the batch mean and
    the unbiased variance N / (N - (1 + epsilon)) * var, as Keras 2.2 does), moving statistics otherwise."""

    def __init__(self, gamma, beta, moving_mean, moving_variance, momentum, epsilon, trainable):
        self.gamma, self.beta, self.mean, self.var = gamma, beta, moving_mean, moving_variance
        self.momentum, self.epsilon, self.trainable = momentum, epsilon, trainable
        self.params = [p for p in (gamma, beta) if p is not None] if trainable else []
        self.ggamma = None if gamma is None else np.zeros_like(gamma)
        self.gbeta = None if beta is None else np.zeros_like(beta)
        self.grads = [g for g in (self.ggamma, self.gbeta) if g is not None] if trainable else []

    def reserve(self, rows, dtype, need_dx):
        self.out = np.empty((rows, self.n_out), dtype)
        self.dx = np.empty((rows, self.n_out), dtype) if need_dx else None

    def forward(self, x, rows, training, step):
        if training:
            x64 = x.astype(np.float64)
            mean = x64.mean(axis=0)
            var = np.square(x64 - mean).mean(axis=0)
            inv = 1.0 / np.sqrt(var + self.epsilon)
            self.batch_mean, self.inv = mean, inv
            if self.trainable:
                n = x.shape[0]
                unbiased = var * (n / (n - (1.0 + self.epsilon)))
                self.mean[...] = self.mean - (self.mean - mean) * (1.0 - self.momentum)
                self.var[...] = self.var - (self.var - unbiased) * (1.0 - self.momentum)
        else:
            mean = self.mean.astype(np.float64)
            inv = 1.0 / np.sqrt(self.var.astype(np.float64) + self.epsilon)
        out = self.out[:rows]
        np.multiply(x - mean.astype(x.dtype), inv.astype(x.dtype), out=out)
        self.xhat = out.copy() if training else None
        if self.gamma is not None:
            out *= self.gamma
        if self.beta is not None:
            out += self.beta
        return out

    def backward(self, grad, rows, need_dx):
        xhat = self.xhat
        dbeta = grad.sum(axis=0, dtype=np.float64)
        dgamma = (grad * xhat).sum(axis=0, dtype=np.float64)
        if self.trainable:
            if self.ggamma is not None:
                self.ggamma[...] = dgamma
            if self.gbeta is not None:
                self.gbeta[...] = dbeta
        if not need_dx:
            return None
        gamma = 1.0 if self.gamma is None else self.gamma.astype(np.float64)
        factor = (gamma * self.inv / rows).astype(grad.dtype)
        dx = self.dx[:rows]
        np.multiply(grad, grad.dtype.type(rows), out=dx)
        dx -= dbeta.astype(grad.dtype)
        dx -= xhat * dgamma.astype(grad.dtype)
        dx *= factor
        return dx


def gaussian(seed, step, count, offset=0):
    """`count` standard normal draws (float64) of elements offset.. for (seed, step): Box-Muller on the
    uniforms of counters 2e and 2e + 1 of the dropout RNG."""
    u = rng.uniform(seed, step, 2 * count, 2 * offset)
    return np.sqrt(-2.0 * np.log1p(-u[0::2])) * np.cos(2.0 * np.pi * u[1::2])


class Noise(_Op):
    """GaussianNoise (x + stddev * z), GaussianDropout (x * (1 + sqrt(rate / (1 - rate)) * z)) or AlphaDropout
    (Keras 2.2's affine dropout that keeps SELU's mean and variance), in training only."""

    row0 = 0  # the place in the global batch of the first row (distributed training; 0 in one process)

    def __init__(self, kind, value, seed):
        self.kind, self.value, self.seed = kind, value, seed

    def reserve(self, rows, dtype, need_dx):
        self.out = np.empty((rows, self.n_out), dtype)
        self.mask = np.empty((rows, self.n_out), dtype)

    def forward(self, x, rows, training, step):
        if not training:
            return x
        out, dt, shape = self.out[:rows], x.dtype.type, x.shape
        e0 = self.row0 * self.n_out
        if self.kind == "gaussian_noise":
            np.add(x, (self.value * gaussian(self.seed, step, x.size, e0)).reshape(shape).astype(x.dtype), out=out)
            return out
        mask = self.mask[:rows]
        if self.kind == "gaussian_dropout":
            stddev = np.sqrt(self.value / (1.0 - self.value))
            mask[...] = (1.0 + stddev * gaussian(self.seed, step, x.size, e0)).reshape(shape)
            return np.multiply(x, mask, out=out)
        rate = self.value
        keep = rng.uniform(self.seed, step, x.size, e0).reshape(shape) >= rate
        alpha_p = -SELU_ALPHA * SELU_SCALE
        a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * rate
        mask[...] = keep * a
        np.multiply(x, mask, out=out)
        out += np.where(keep, dt(b), dt(a * alpha_p + b))
        return out

    def backward(self, grad, rows, need_dx):
        if self.kind != "gaussian_noise":
            grad *= self.mask[:rows]
        return grad


def penalty(arr, l1, l2):
    """l1 * sum|a| + l2 * sum a**2, in float64."""
    a = arr.astype(np.float64)
    return l1 * np.abs(a).sum() + l2 * np.square(a).sum()


def add_penalty_gradient(arr, l1, l2, grad):
    """grad += l1 * sign(a) + 2 * l2 * a."""
    dt = grad.dtype.type
    grad += dt(l1) * np.sign(arr) + dt(2 * l2) * arr


def apply_constraint(arr, kind, max_value, min_value, rate, axis):
    """Constrain `arr` in place (Keras 2.2 definitions, norms in float64 along `axis`, fuzz 1e-7)."""
    if kind == "non_neg":
        arr *= arr >= 0
        return
    norms = np.sqrt(np.square(arr.astype(np.float64)).sum(axis=axis, keepdims=True))
    if kind == "max_norm":
        factor = np.clip(norms, 0, max_value) / (1e-7 + norms)
    elif kind == "unit_norm":
        factor = 1.0 / (1e-7 + norms)
    else:  # min_max_norm
        desired = rate * np.clip(norms, min_value, max_value) + (1 - rate) * norms
        factor = desired / (1e-7 + norms)
    arr *= factor.astype(arr.dtype)
