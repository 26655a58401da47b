"""The layer ops beyond Dense/activation/dropout (`names.LAYER_OPS`) in the Cython engine, against the NumPy
reference: batch normalization, the parametric activations, PReLU, noise, activity and weight penalties and
constraints. Float64 within 1e-8, with one thread and with batches split over two (row blocks, column
slices for batch normalization, parameter slices)."""
import numpy as np
import pytest
from core_helpers import Network, Optimizer

from fastfit.contract.ops import trained_params

reference = pytest.importorskip("fastfit._reference.loop")

N, BATCH, N_IN, HIDDEN, UNITS = 150, 64, 12, 40, 4


def _dense(rng, dtype, n_in, n_out):
    return (rng.normal(size=(n_in, n_out)) * 0.4).astype(dtype), (rng.normal(size=n_out) * 0.1).astype(dtype)


def make_ops(dtype, middle, seed=0, frozen=()):
    """Dense(N_IN -> HIDDEN), the ops `middle(rng, dtype)` returns, Dense(HIDDEN -> UNITS) + softmax, with an
    l2 penalty and a max-norm constraint on the first kernel. Returns (ops, params in engine order)."""
    rng = np.random.default_rng(seed)
    W0, b0 = _dense(rng, dtype, N_IN, HIDDEN)
    W1, b1 = _dense(rng, dtype, HIDDEN, UNITS)
    inner = middle(rng, dtype)
    inner = [op + (False,) if op[0] in ("prelu", "batch_normalization") and op[0] in frozen else op for op in inner]
    ops = ([("dense", W0, b0), ("activation", "tanh"), ("penalty", W0, 0.0, 1e-2),
            ("constraint", W0, "max_norm", 1.5, 0.0, 1.0, 0)] + inner
           + [("dense", W1, b1), ("activation", "softmax")])
    return ops, trained_params(ops)


def _bn(rng, dtype, center=True, scale=True, act="relu"):
    gamma = (1 + 0.1 * rng.normal(size=HIDDEN)).astype(dtype) if scale else None
    beta = (0.1 * rng.normal(size=HIDDEN)).astype(dtype) if center else None
    mean = np.zeros(HIDDEN, dtype)
    var = np.ones(HIDDEN, dtype)
    ops = [("batch_normalization", gamma, beta, mean, var, 0.9, 1e-3)]
    return ops + ([("activation", act)] if act else [])


MIDDLES = {
    "batch_normalization": lambda rng, dt: _bn(rng, dt),
    "batch_normalization_plain": lambda rng, dt: _bn(rng, dt, center=False, scale=False, act=None),
    "batch_normalization_softmax": lambda rng, dt: _bn(rng, dt, act="softmax"),
    "leaky_relu": lambda rng, dt: [("relu", 0.3, None, 0.0)],
    "relu_full": lambda rng, dt: [("relu", 0.1, 0.6, 0.05)],
    "thresholded_relu": lambda rng, dt: [("relu", 0.0, None, 0.2)],
    "elu": lambda rng, dt: [("elu", 0.7)],
    "prelu": lambda rng, dt: [("prelu", (0.1 * rng.normal(size=HIDDEN)).astype(dt))],
    "prelu_shared": lambda rng, dt: [("prelu", np.full(1, 0.2, dt))],
    "gaussian_noise": lambda rng, dt: [("gaussian_noise", 0.3, 7)],
    "gaussian_dropout": lambda rng, dt: [("gaussian_dropout", 0.3, 8)],
    "alpha_dropout": lambda rng, dt: [("alpha_dropout", 0.2, 9)],
    "activity_regularization": lambda rng, dt: [("activity_regularization", 1e-3, 1e-2)],
    "penalties_and_constraints": lambda rng, dt: _penalised(rng, dt),
}


def _penalised(rng, dt):
    W, b = _dense(rng, dt, HIDDEN, HIDDEN)
    return [("dense", W, b), ("penalty", W, 1e-3, 1e-3), ("penalty", b, 1e-2, 0.0),
            ("constraint", W, "unit_norm", 0.0, 0.0, 1.0, 1), ("constraint", b, "non_neg", 0.0, 0.0, 1.0, 0),
            ("relu", 0.0, None, 0.0)]


def _train(engine, dtype, middle, threads=1, frozen=(), epochs=3, kind="adam"):
    ops, params = make_ops(dtype, MIDDLES[middle], frozen=frozen)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, N_IN)).astype(dtype)
    y = np.eye(UNITS, dtype=dtype)[rng.integers(0, UNITS, N)]
    net = engine(ops, "categorical_crossentropy", ["categorical_accuracy"], dtype)
    if engine is Network:
        net.split_threads = threads
    opt = Optimizer(kind, params)
    sums = [net.train_epoch(x, y, None, rng.permutation(N).astype(np.int64), BATCH, opt, None)
            for _ in range(epochs)]
    evaluated = net.evaluate(x, y, None, BATCH, None)
    out = np.zeros((N, UNITS), dtype)
    net.predict(x, BATCH, out, None)
    arrays = [np.array(a) for op in ops for a in op[1:] if isinstance(a, np.ndarray)]
    return arrays, sums, evaluated, out


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("middle", sorted(MIDDLES))
def test_cython_matches_reference_in_float64(middle, threads):
    got = _train(Network, np.float64, middle, threads)
    want = _train(reference.Network, np.float64, middle)
    for a, b in zip(got[0], want[0]):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    for part in (1, 2, 3):
        np.testing.assert_allclose(np.asarray(got[part]), np.asarray(want[part]), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("middle", ["batch_normalization", "prelu", "alpha_dropout", "penalties_and_constraints"])
def test_cython_matches_reference_in_float32(middle):
    got = _train(Network, np.float32, middle, threads=2)
    want = _train(reference.Network, np.float32, middle)
    for a, b in zip(got[0], want[0]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("middle", ["batch_normalization", "prelu"])
def test_frozen_ops_keep_their_weights_and_agree(middle):
    got = _train(Network, np.float64, middle, threads=2, frozen=(middle,))
    want = _train(reference.Network, np.float64, middle, frozen=(middle,))
    start, _ = make_ops(np.float64, MIDDLES[middle])
    before = [a for op in start[4:5] for a in op[1:] if isinstance(a, np.ndarray)]
    after = got[0][4:4 + len(before)]
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)  # gamma, beta, moving statistics / alpha unchanged
    for a, b in zip(got[0], want[0]):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_batch_normalization_moves_its_statistics_once_per_batch():
    ops, params = make_ops(np.float64, MIDDLES["batch_normalization_plain"])
    bn = ops[4]
    x = np.random.default_rng(2).normal(size=(32, N_IN))
    y = np.eye(UNITS)[np.arange(32) % UNITS]
    net = Network(ops, "categorical_crossentropy", [], np.float64)
    hidden = np.tanh(x @ ops[0][1] + ops[0][2])
    net.train_epoch(x, y, None, np.arange(32, dtype=np.int64), 32, Optimizer("sgd", params, lr=0.0, momentum=0.0),
                    None)
    np.testing.assert_allclose(bn[3], 0.1 * hidden.mean(0), rtol=1e-12)
    np.testing.assert_allclose(bn[4], 0.9 + 0.1 * hidden.var(0) * 32 / (32 - 1.001), rtol=1e-12)


BAD_OPS = [
    (lambda W: [("dense", W, None), ("penalty", np.zeros(3), 0.0, 0.1)], "penalty array"),
    (lambda W: [("dense", W, None), ("penalty", W, -1.0, 0.1)], "l1"),
    (lambda W: [("dense", W, None), ("constraint", W, "max_norm", 1.0, 0.0, 1.0, 2)], "axis"),
    (lambda W: [("dense", W, None), ("constraint", W, "nope", 1.0, 0.0, 1.0, 0)], "kind"),
    (lambda W: [("dense", W, None), ("batch_normalization", None, None, np.zeros(4), np.ones(4), 0.9, 1e-3)],
     "input features"),
    (lambda W: [("dense", W, None), ("batch_normalization", None, None, np.zeros(3), np.ones(3), 0.9, 0.0)],
     "epsilon"),
    (lambda W: [("dense", W, None), ("alpha_dropout", 1.0, 3)], "rate"),
    (lambda W: [("dense", W, None), ("gaussian_noise", 0.1, -3)], "seed"),
    (lambda W: [("dense", W, None), ("prelu", np.zeros((3, 1)))], "alpha"),
    (lambda W: [("dense", W, None), ("relu", 0.1, -1.0, 0.0)], "max_value"),
    (lambda W: [("dense", W, None), ("elu",)], "malformed"),
    (lambda W: [("dense", W, None), ("penalty", W, 0.0, 0.1), ("penalty", W, 0.1, 0.0)], "two penalty ops"),
    (lambda W: [("dense", W, None, False), ("penalty", W, 0.0, 0.1), ("penalty", W, 0.1, 0.0)], "two penalty ops"),
]


@pytest.mark.parametrize("make, words", BAD_OPS)
def test_both_engines_reject_the_same_bad_ops(make, words):
    messages = []
    for engine in (Network, reference.Network):
        with pytest.raises(ValueError, match=words) as info:
            engine(make(np.zeros((2, 3))), "mean_squared_error", [], np.float64)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
