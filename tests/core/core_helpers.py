"""Helpers of the core tests (`fastfit._ext` driven directly): tiny seeded models, optimizers, recording hooks."""
import numpy as np
import pytest
from fastfit._ext._loop import Network

SLOT_COUNTS = {"sgd": 1, "rmsprop": 1, "adagrad": 1, "adadelta": 2, "adam": 2, "adamax": 2, "nadam": 2}
OPTIMIZER_DEFAULTS = {
    "sgd": dict(lr=0.05, momentum=0.9, nesterov=True),
    "rmsprop": dict(lr=0.01, rho=0.9),
    "adagrad": dict(lr=0.05),
    "adadelta": dict(lr=1.0, rho=0.95),
    "adam": dict(lr=0.01, beta_1=0.9, beta_2=0.999),
    "adamax": dict(lr=0.02, beta_1=0.9, beta_2=0.999),
    "nadam": dict(lr=0.01, beta_1=0.9, beta_2=0.999, schedule_decay=0.004),
}

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


class Optimizer:
    """The optimizer object the engines read (docs/architecture.md), with fresh zero slots."""

    def __init__(self, kind, params, **hyper):
        self.kind = kind
        self.lr, self.decay, self.epsilon = 0.01, 0.0, 1e-7
        self.momentum, self.nesterov, self.rho = 0.0, False, 0.9
        self.beta_1, self.beta_2, self.amsgrad, self.schedule_decay = 0.9, 0.999, False, 0.004
        self.iterations, self.m_schedule = 0, 1.0
        for key, value in {**OPTIMIZER_DEFAULTS[kind], **hyper}.items():
            setattr(self, key, value)
        count = 3 if kind == "adam" and self.amsgrad else SLOT_COUNTS[kind]
        self.slots = [[np.zeros_like(p) for _ in range(count)] for p in params]


class Hook:
    """Records every call as (phase, batch, size, stats copy); can stop, raise or change lr on a batch."""

    def __init__(self, begin=True, end=True, interval=0.0, stop_at=None, raise_at=None, on_call=None):
        self.batch_begin, self.batch_end, self.end_interval = begin, end, interval
        self.calls, self.stop_at, self.raise_at, self.on_call = [], stop_at, raise_at, on_call

    def __call__(self, phase, batch, size, stats):
        self.calls.append((phase, batch, size, stats.copy()))
        if self.on_call is not None:
            self.on_call(phase, batch, size, stats)
        if self.raise_at == (phase, batch):
            raise RuntimeError("hook failure")
        return self.stop_at == (phase, batch)


def make_ops(dtype, sizes, activations, seed=0, bias=True, dropout=None, scale=0.5):
    """A dense chain sizes[0] -> ... -> sizes[-1] with an activation after each Dense.

    `dropout` maps a layer index to (rate, seed): a dropout op inserted after that layer's activation.
    Returns (ops, params).
    """
    rng = np.random.default_rng(seed)
    ops, params = [], []
    for i, act in enumerate(activations):
        W = (rng.normal(size=(sizes[i], sizes[i + 1])) * scale).astype(dtype)
        b = (rng.normal(size=sizes[i + 1]) * 0.1).astype(dtype) if bias else None
        ops += [("dense", W, b), ("activation", act)]
        params += [W] + ([b] if bias else [])
        if dropout and i in dropout:
            ops.append(("dropout",) + tuple(dropout[i]))
    return ops, params


def make_data(dtype, n, n_in, units, loss, seed=1):
    """Seeded x and targets suited to `loss` (labels, one-hot, {-1, 1}, {0, 1} or positive values)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_in)).astype(dtype)
    labels = rng.integers(0, units, n)
    if loss.startswith("sparse_categorical_crossentropy"):
        return x, labels.astype(np.int64)
    if loss in ("categorical_crossentropy", "categorical_hinge", "kullback_leibler_divergence",
                "categorical_crossentropy_from_logits"):
        y = np.eye(units)[labels]
    elif loss in ("hinge", "squared_hinge"):
        y = np.where(rng.random((n, units)) < 0.5, -1.0, 1.0)
    elif loss.startswith("binary_crossentropy"):
        y = (rng.random((n, units)) < 0.5).astype(float)
    else:
        y = rng.random((n, units)) + 0.1
    return x, y.astype(dtype)


def copies(arrays):
    return [a.copy() for a in arrays]


__all__ = ["DTYPES", "Network", "Optimizer", "Hook", "make_ops", "make_data", "copies"]
