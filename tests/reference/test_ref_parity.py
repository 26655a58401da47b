"""The reference engine and the Cython engine agree (skipped when the extensions are not built)."""
import numpy as np
import pytest

from fastfit._reference.loop import Network as RefNetwork
from fastfit.contract.names import OPTIMIZERS
from ref_helpers import StubOptimizer

cy_loop = pytest.importorskip("fastfit._ext._loop", reason="Cython engine not built")

# (loss, hidden activation, output activation, metrics): every loss, activation and metric at least once.
MODELS = [
    ("categorical_crossentropy", "relu", "softmax",
     ["categorical_accuracy", "top_k_categorical_accuracy", "categorical_crossentropy", "categorical_hinge"]),
    ("sparse_categorical_crossentropy", "tanh", "softmax",
     ["sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy", "sparse_categorical_crossentropy"]),
    ("binary_crossentropy", "elu", "sigmoid", ["binary_accuracy", "kullback_leibler_divergence"]),
    ("mean_squared_error", "selu", "linear", ["mean_absolute_error", "logcosh", "cosine_proximity"]),
    ("kullback_leibler_divergence", "softplus", "softmax", ["poisson"]),
    ("cosine_proximity", "softsign", "hard_sigmoid", ["mean_squared_logarithmic_error"]),
    ("mean_absolute_percentage_error", "elu", "linear", ["mean_squared_error"]),
    ("hinge", "sigmoid", "tanh", ["squared_hinge"]),
    ("poisson", "linear", "softplus", ["mean_absolute_percentage_error"]),
    ("categorical_hinge", "relu", "linear", ["categorical_accuracy"]),
    ("squared_hinge", "tanh", "linear", ["hinge"]),
    ("mean_squared_logarithmic_error", "relu", "softplus", []),
    ("logcosh", "exponential", "linear", []),
    ("mean_absolute_error", "selu", "linear", []),
]
N, N_IN, HIDDEN, UNITS = 23, 6, 8, 7


def targets(loss, dtype, rng):
    labels = rng.integers(0, UNITS, N)
    if loss == "sparse_categorical_crossentropy":
        return labels.astype(np.int64)
    if loss in ("categorical_crossentropy", "categorical_hinge", "kullback_leibler_divergence"):
        return np.eye(UNITS, dtype=dtype)[labels]
    if loss in ("hinge", "squared_hinge"):
        return np.where(rng.random((N, UNITS)) < 0.5, -1, 1).astype(dtype)
    if loss == "binary_crossentropy":
        return (rng.random((N, UNITS)) < 0.5).astype(dtype)
    return (rng.random((N, UNITS)) + 0.1).astype(dtype)


def run(Network, dtype, model, kind):
    loss, hidden, output, metrics = model
    rng = np.random.default_rng(0)
    W1 = (rng.normal(size=(N_IN, HIDDEN)) * 0.4).astype(dtype)
    b1 = (rng.normal(size=HIDDEN) * 0.1).astype(dtype)
    W2 = (rng.normal(size=(HIDDEN, UNITS)) * 0.4).astype(dtype)
    x = rng.normal(size=(N, N_IN)).astype(dtype)
    y = targets(loss, dtype, rng)
    w = rng.random(N).astype(dtype)
    w[:3] = 0
    order = rng.permutation(N).astype(np.int64)
    ops = [("dense", W1, b1), ("activation", hidden), ("dropout", 0.3, 5), ("dense", W2, None),
           ("activation", output)]
    net = Network(ops, loss, metrics, dtype)
    opt = StubOptimizer(kind, [W1, b1, W2], lr=0.01, decay=0.01, momentum=0.9, nesterov=True,
                        amsgrad=kind == "adam")
    sums = [net.train_epoch(x, y, w, order, 5, opt, None),
            net.train_epoch(x, y, None, np.arange(N, dtype=np.int64), 6, opt, None),
            net.evaluate(x, y, w, 7, None)]
    out = np.zeros((N, UNITS), dtype)
    net.predict(x, 4, out, None)
    return sums, out, [W1, b1, W2, *[s for slots in opt.slots for s in slots]], opt


@pytest.mark.parametrize("kind", OPTIMIZERS)
@pytest.mark.parametrize("model", MODELS, ids=[m[0] for m in MODELS])
def test_engines_agree(model, kind, dtype):
    ref_sums, ref_out, ref_arrays, ref_opt = run(RefNetwork, dtype, model, kind)
    cy_sums, cy_out, cy_arrays, cy_opt = run(cy_loop.Network, dtype, model, kind)
    tol = dict(rtol=1e-9, atol=1e-10) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    for a, b in zip(ref_sums, cy_sums):
        np.testing.assert_allclose(a, b, **tol)
    np.testing.assert_allclose(ref_out, cy_out, **tol)
    for a, b in zip(ref_arrays, cy_arrays):
        np.testing.assert_allclose(a, b, **tol)
    assert ref_opt.iterations == cy_opt.iterations == 9
    assert ref_opt.m_schedule == pytest.approx(cy_opt.m_schedule, rel=1e-14)
