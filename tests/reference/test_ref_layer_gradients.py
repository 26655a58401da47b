"""Finite-difference checks of the reference engine's gradients for the layer ops (batch normalization,
parametric activations, PReLU, noise, activity and weight penalties): the gradient the engine hands the
optimizer, and through the first Dense kernel the input gradient of every op above it, against central
differences of the training loss it reports (penalties included)."""
import numpy as np
import pytest

from fastfit._reference.loop import Network

N, N_IN, HIDDEN, UNITS = 24, 5, 6, 3


def _ops(middle, rng):
    W0 = rng.normal(size=(N_IN, HIDDEN)) * 0.5
    b0 = rng.normal(size=HIDDEN) * 0.1
    W1 = rng.normal(size=(HIDDEN, UNITS)) * 0.5
    b1 = rng.normal(size=UNITS) * 0.1
    return [("dense", W0, b0), ("penalty", W0, 1e-2, 1e-2)] + middle(rng) + [("dense", W1, b1),
                                                                             ("activation", "softmax")]


MIDDLES = {
    "batch_normalization": lambda rng: [("batch_normalization", 1 + 0.2 * rng.normal(size=HIDDEN),
                                         0.1 * rng.normal(size=HIDDEN), np.zeros(HIDDEN), np.ones(HIDDEN), 0.9,
                                         1e-3), ("activation", "tanh"), ("penalty", None, 0, 0)],
    "relu": lambda rng: [("relu", 0.2, 0.9, 0.1)],
    "elu": lambda rng: [("elu", 0.6)],
    "prelu": lambda rng: [("prelu", 0.3 * rng.normal(size=HIDDEN))],
    "prelu_shared": lambda rng: [("prelu", np.array([0.25]))],
    "gaussian_noise": lambda rng: [("gaussian_noise", 0.3, 1)],
    "gaussian_dropout": lambda rng: [("gaussian_dropout", 0.3, 2)],
    "alpha_dropout": lambda rng: [("alpha_dropout", 0.3, 3)],
    "activity_regularization": lambda rng: [("activity_regularization", 1e-2, 1e-2)],
}


def _prepare(middle):
    rng = np.random.default_rng(4)
    ops = _ops(MIDDLES[middle], rng)
    if middle == "batch_normalization":  # a penalty on gamma too
        ops[-3] = ("penalty", ops[2][1], 1e-2, 1e-2)
    net = Network(ops, "categorical_crossentropy", [], np.float64)
    x = rng.normal(size=(N, N_IN))
    y = np.eye(UNITS)[rng.integers(0, UNITS, N)]
    net._reserve(N)
    return net, x, y


def _loss(net, x, y, step=5):
    """The training loss of one batch at the current parameters (moving statistics left as they were)."""
    saved = [np.copy(op.mean) for op in net._layers if hasattr(op, "momentum")]
    out = net._forward(x, N, True, step)
    net._score(out, y, None, N, grad=True)
    net._weight_penalties(False)
    for op, mean in zip([op for op in net._layers if hasattr(op, "momentum")], saved):
        op.mean[...] = mean
    return net._stats[0]


@pytest.mark.parametrize("middle", sorted(MIDDLES))
def test_gradients_match_finite_differences(middle):
    net, x, y = _prepare(middle)
    _loss(net, x, y)
    net._backward(N)
    net._weight_penalties(True)
    analytic = [g.copy() for g in net._grads]
    h = 1e-6
    for param, grad in zip(net._params, analytic):
        flat = param.reshape(-1)
        for k in range(0, flat.size, max(1, flat.size // 7)):
            keep = flat[k]
            flat[k] = keep + h
            up = _loss(net, x, y)
            flat[k] = keep - h
            down = _loss(net, x, y)
            flat[k] = keep
            numeric = (up - down) / (2 * h)
            assert grad.reshape(-1)[k] == pytest.approx(numeric, rel=1e-5, abs=1e-7), (middle, param.shape, k)
