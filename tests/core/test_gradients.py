"""Self-contained checks of the Cython kernels: gradients against finite differences, and the dropout RNG.

The engine's gradient is read back from one plain SGD step with lr = 1 (W_new = W - grad); the numeric
gradient differentiates the batch loss that `evaluate` returns. Everything runs in float64.
"""
import numpy as np
import pytest

from core_helpers import Network, Optimizer, make_data, make_ops, copies

LOSS_ACTIVATION = {
    "mean_squared_error": "tanh",
    "mean_absolute_error": "linear",
    "mean_absolute_percentage_error": "linear",
    "mean_squared_logarithmic_error": "softplus",
    "squared_hinge": "tanh",
    "hinge": "linear",
    "categorical_hinge": "softmax",
    "logcosh": "linear",
    "categorical_crossentropy": "softmax",
    "sparse_categorical_crossentropy": "softmax",
    "binary_crossentropy": "sigmoid",
    "kullback_leibler_divergence": "softmax",
    "poisson": "softplus",
    "cosine_proximity": "linear",
}
HIDDEN = ["linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus", "softsign",
          "hard_sigmoid", "exponential"]


def engine_gradient(ops, params, loss, x, y, w=None):
    net = Network(ops, loss, [], np.float64)
    before = copies(params)
    opt = Optimizer("sgd", params, lr=1.0, momentum=0.0, nesterov=False)
    net.train_epoch(x, y, w, np.arange(len(x), dtype=np.int64), len(x), opt, None)
    grads = [b - p for b, p in zip(before, params)]
    for p, b in zip(params, before):
        p[...] = b
    return grads


def numeric_gradient(ops, params, loss, x, y, w=None, h=1e-6):
    net = Network(ops, loss, [], np.float64)
    grads = []
    for p in params:
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            keep = p[idx]
            p[idx] = keep + h
            up = net.evaluate(x, y, w, len(x), None)[1]
            p[idx] = keep - h
            down = net.evaluate(x, y, w, len(x), None)[1]
            p[idx] = keep
            g[idx] = (up - down) / (2 * h * len(x))
        grads.append(g)
    return grads


def check(ops, params, loss, x, y, w=None):
    for got, want in zip(engine_gradient(ops, params, loss, x, y, w), numeric_gradient(ops, params, loss, x, y, w)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-7)


@pytest.mark.parametrize("loss", sorted(LOSS_ACTIVATION))
def test_loss_gradients(loss):
    ops, params = make_ops(np.float64, [3, 4, 3], ["tanh", LOSS_ACTIVATION[loss]])
    x, y = make_data(np.float64, 5, 3, 3, loss)
    check(ops, params, loss, x, y)


@pytest.mark.parametrize("loss, last", [("categorical_crossentropy", "sigmoid"),
                                        ("sparse_categorical_crossentropy", "sigmoid"),
                                        ("binary_crossentropy", "softmax"),
                                        ("categorical_crossentropy", "linear_softmax")])
def test_unfused_loss_gradients(loss, last):
    if last == "linear_softmax":  # softmax as a separate op after a Dense with its own activation
        ops, params = make_ops(np.float64, [3, 4, 3], ["tanh", "tanh"])
        ops.append(("activation", "softmax"))
    else:
        ops, params = make_ops(np.float64, [3, 4, 3], ["tanh", last])
    x, y = make_data(np.float64, 5, 3, 3, loss)
    check(ops, params, loss, x, y)


@pytest.mark.parametrize("activation", HIDDEN)
def test_activation_gradients(activation):
    ops, params = make_ops(np.float64, [3, 4, 2], [activation, "linear"])
    x, y = make_data(np.float64, 5, 3, 2, "mean_squared_error")
    check(ops, params, "mean_squared_error", x, y)


def test_sample_weight_gradient_and_loss():
    ops, params = make_ops(np.float64, [3, 4, 3], ["relu", "softmax"], bias=False)
    x, y = make_data(np.float64, 6, 3, 3, "categorical_crossentropy")
    w = np.array([0.5, 0.0, 2.0, 1.0, 0.0, 1.5])
    check(ops, params, "categorical_crossentropy", x, y, w)
    net = Network(ops, "categorical_crossentropy", [], np.float64)
    per_sample = [net.evaluate(x[i:i + 1], y[i:i + 1], None, 1, None)[1] for i in range(6)]
    want = np.dot(w, per_sample) / 4  # four non-zero weights
    assert net.evaluate(x, y, w, 6, None)[1] == pytest.approx(want * 6, rel=1e-12)
    assert net.evaluate(x, y, np.zeros(6), 6, None)[1] == 0


def splitmix64(z):
    m = (1 << 64) - 1
    z = (z + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def expected_mask(seed, step, rows, width, rate):
    base = (seed * 0x9E3779B97F4A7C15 + step * 0xBF58476D1CE4E5B9) % (1 << 64)
    u = np.array([(splitmix64((base + e) % (1 << 64)) >> 11) * 2.0 ** -53 for e in range(rows * width)])
    return np.where(u >= rate, 1 / (1 - rate), 0.0).reshape(rows, width)


@pytest.mark.parametrize("step", [0, 7])
def test_dropout_mask_follows_the_counter_rng(step):
    # Dense(identity) -> Dropout -> mse against 0: the loss is mean((x * mask)^2).
    rows, width, rate, seed = 6, 5, 0.4, 123
    W = np.eye(width)
    ops = [("dense", W, None), ("dropout", rate, seed)]
    x = np.random.default_rng(0).normal(size=(rows, width))
    opt = Optimizer("sgd", [W], lr=0.0, momentum=0.0, nesterov=False)
    opt.iterations = step
    net = Network(ops, "mean_squared_error", [], np.float64)
    sums = net.train_epoch(x, np.zeros((rows, width)), None, np.arange(rows, dtype=np.int64), rows, opt, None)
    mask = expected_mask(seed, step, rows, width, rate)
    assert sums[1] / rows == pytest.approx(np.mean((x * mask) ** 2), rel=1e-12)
    assert 0 < np.count_nonzero(mask) < mask.size
    # evaluate and predict ignore dropout
    assert net.evaluate(x, np.zeros((rows, width)), None, rows, None)[1] / rows == pytest.approx(np.mean(x ** 2))
