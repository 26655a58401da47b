"""Property tests (hypothesis): the engines agree, and no shape makes the compiled code leave its arrays.

1. Through the public API, random layer sizes, batch sizes (partial last batch, batch > n), dtypes,
   activations, losses and optimizers train to the same weights on the Cython and the NumPy engine.
2. On the Cython `Network` directly, every array lives inside a larger buffer whose guard cells are NaN
   (inputs: a stray read poisons the results) or a sentinel (outputs: a stray write changes it), so an
   out-of-bounds access fails the test even without valgrind. `python tests/robustness/memcheck.py
   properties` runs this file under valgrind memcheck as well.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastfit
from fastfit.core import compiled_core
from fastfit.layers import Dense, Dropout
from fastfit.models import Sequential

pytestmark = pytest.mark.skipif(compiled_core() is None, reason="the Cython engine is not built")

EXAMPLES = int(os.environ.get("FASTFIT_PROPERTY_EXAMPLES", "25"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("FASTFIT_PROPERTY_RANDOM") is None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus", "softsign",
               "hard_sigmoid", "exponential"]
# Each loss with an output activation that gives it valid predictions, and the kind of target it takes.
LOSSES = {
    "mean_squared_error": ("linear", "real"), "mean_absolute_error": ("tanh", "real"),
    "mean_absolute_percentage_error": ("softplus", "positive"),
    "mean_squared_logarithmic_error": ("softplus", "positive"), "squared_hinge": ("tanh", "sign"),
    "hinge": ("linear", "sign"), "categorical_hinge": ("softmax", "onehot"), "logcosh": ("linear", "real"),
    "categorical_crossentropy": ("softmax", "onehot"), "sparse_categorical_crossentropy": ("softmax", "labels"),
    "binary_crossentropy": ("sigmoid", "binary"), "kullback_leibler_divergence": ("softmax", "onehot"),
    "poisson": ("softplus", "positive"), "cosine_proximity": ("linear", "real"),
}
OPTIMIZERS = {
    "sgd": lambda: fastfit.optimizers.SGD(lr=0.01, momentum=0.5, nesterov=True, decay=1e-3),
    "rmsprop": lambda: fastfit.optimizers.RMSprop(lr=0.01),
    "adagrad": lambda: fastfit.optimizers.Adagrad(lr=0.05),
    "adadelta": lambda: fastfit.optimizers.Adadelta(),
    "adam": lambda: fastfit.optimizers.Adam(lr=0.01, amsgrad=True),
    "adamax": lambda: fastfit.optimizers.Adamax(),
    "nadam": lambda: fastfit.optimizers.Nadam(),
}
# float64 must agree tightly. In float32 the engines sum in different orders (BLAS), and on random problems
# that rounding can be amplified without bound (a gradient that is 0 in exact arithmetic comes out as 1e-9 in
# one engine, and Adagrad/RMSprop turn it into a full `lr` step; SGD near divergence does the same), so for
# float32 only the dtype and the pattern of finite values are compared here; tests/core compares float32
# on well-conditioned problems.
TOLERANCE = dict(rtol=1e-8, atol=1e-10)


def targets(kind, rng, n, units):
    labels = rng.integers(0, units, n)
    if kind == "labels":
        return labels
    if kind == "onehot":
        return np.eye(units)[labels]
    if kind == "sign":
        return np.where(rng.random((n, units)) < 0.5, -1.0, 1.0)
    if kind == "binary":
        return (rng.random((n, units)) < 0.5).astype(float)
    if kind == "positive":
        return rng.random((n, units)) + 0.1
    return rng.normal(size=(n, units))


def train(engine, case):
    fastfit.utils.set_random_seed(case["seed"])
    layers = [Dense(case["hidden"][0], input_dim=case["features"], activation=case["activations"][0],
                    dtype=case["dtype"])]
    for width, activation in zip(case["hidden"][1:], case["activations"][1:]):
        layers.append(Dense(width, activation=activation, dtype=case["dtype"]))
    if case["dropout"]:
        layers.append(Dropout(case["dropout"], seed=3, dtype=case["dtype"]))
    output, _ = LOSSES[case["loss"]]
    layers.append(Dense(case["units"], activation=output, dtype=case["dtype"]))
    net = Sequential(layers)
    net.compile(OPTIMIZERS[case["optimizer"]](), case["loss"], engine=engine)
    rng = np.random.default_rng(case["seed"])
    x = rng.normal(size=(case["n"], case["features"]))
    y = targets(LOSSES[case["loss"]][1], rng, case["n"], case["units"])
    history = net.fit(x, y, batch_size=case["batch_size"], epochs=2, verbose=0, shuffle=case["shuffle"])
    return net.get_weights(), history.history["loss"], net.predict(x, batch_size=case["batch_size"])


@st.composite
def cases(draw):
    n = draw(st.integers(1, 40))
    depth = draw(st.integers(1, 3))
    loss = draw(st.sampled_from(sorted(LOSSES)))
    # cosine_proximity of one-unit outputs has an exactly zero gradient: only rounding noise would be compared
    two_or_more = LOSSES[loss][1] in ("labels", "onehot") or loss == "cosine_proximity"
    units = draw(st.integers(2 if two_or_more else 1, 5))
    return dict(
        n=n, features=draw(st.integers(1, 9)), units=units, loss=loss,
        batch_size=draw(st.one_of(st.integers(1, n + 3), st.just(n), st.integers(n + 1, 10 ** 6))),
        hidden=draw(st.lists(st.integers(1, 12), min_size=depth, max_size=depth)),
        # exponential and selu/elu stay tame on these small weights; softmax as a hidden layer is valid too
        activations=draw(st.lists(st.sampled_from(ACTIVATIONS), min_size=depth, max_size=depth)),
        optimizer=draw(st.sampled_from(sorted(OPTIMIZERS))), dtype=draw(st.sampled_from(["float32", "float64"])),
        dropout=draw(st.sampled_from([0.0, 0.0, 0.25])), shuffle=draw(st.sampled_from([True, False, "batch"])),
        seed=draw(st.integers(0, 2 ** 16)))


@SETTINGS
@given(cases())
def test_cython_engine_equals_reference_engine(case):
    got_weights, got_loss, got_out = train("cython", case)
    want_weights, want_loss, want_out = train("python", case)
    assert len(got_weights) == len(want_weights)
    for got, want in zip(got_weights + [got_out], want_weights + [want_out]):
        assert got.dtype == want.dtype == np.dtype(case["dtype"]) and got.shape == want.shape
        if case["dtype"] == "float64":
            np.testing.assert_allclose(got, want, **TOLERANCE)
        else:
            np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    if case["dtype"] == "float64":
        np.testing.assert_allclose(got_loss, want_loss, **TOLERANCE)


# -- the compiled engine never leaves its arrays -------------------------------------------------------------------
GUARD = 3  # guard cells on each side of every array


def guarded(values, fill):
    """A C-contiguous copy of `values` that lives inside a larger buffer with `fill` in GUARD cells each side."""
    flat = np.full(values.size + 2 * GUARD, fill, dtype=values.dtype)
    flat[GUARD:-GUARD] = values.ravel()
    return flat[GUARD:-GUARD].reshape(values.shape), flat


def guards_intact(flat, fill):
    ends = np.concatenate([flat[:GUARD], flat[-GUARD:]])
    return np.all(np.isnan(ends)) if np.isnan(fill) else np.all(ends == fill)


class _Optimizer:
    def __init__(self, kind, params, dtype):
        self.kind, self.lr, self.decay, self.epsilon = kind, 0.01, 0.0, 1e-7
        self.momentum, self.nesterov, self.rho = 0.5, False, 0.9
        self.beta_1, self.beta_2, self.amsgrad, self.schedule_decay = 0.9, 0.999, kind == "adam", 0.004
        self.iterations, self.m_schedule = 0, 1.0
        count = {"sgd": 1, "rmsprop": 1, "adagrad": 1, "adadelta": 2, "adam": 3, "adamax": 2, "nadam": 2}[kind]
        self.slots = [[guarded(np.zeros(p.shape, dtype), -7.0)[0] for _ in range(count)] for p in params]


class _StopHook:
    batch_begin, batch_end, end_interval = True, True, 0.0

    def __init__(self, stop_at):
        self.stop_at = stop_at

    def __call__(self, phase, batch, size, stats):
        return (phase, batch) == self.stop_at


@st.composite
def engine_cases(draw):
    n = draw(st.integers(1, 30))
    loss, (output, kind) = draw(st.sampled_from(sorted(LOSSES.items())))
    return dict(n=n, loss=loss, output=output, kind=kind,
                widths=draw(st.lists(st.integers(1, 10), min_size=2, max_size=4)),
                activations=draw(st.lists(st.sampled_from(ACTIVATIONS), min_size=3, max_size=3)),
                batch_size=draw(st.integers(1, n + 5)), bias=draw(st.booleans()),
                dropout=draw(st.sampled_from([0.0, 0.5])), optimizer=draw(st.sampled_from(sorted(OPTIMIZERS))),
                dtype=draw(st.sampled_from([np.float32, np.float64])), weighted=draw(st.booleans()),
                stop=draw(st.sampled_from([None, (0, 0), (1, 0), (1, 1)])), seed=draw(st.integers(0, 999)))


@SETTINGS
@given(engine_cases())
def test_compiled_engine_stays_inside_its_arrays(case):
    from fastfit._ext._loop import Network
    rng = np.random.default_rng(case["seed"])
    dtype, n, widths = case["dtype"], case["n"], case["widths"]
    units = max(widths[-1], 2) if case["kind"] in ("labels", "onehot") else widths[-1]
    widths = widths[:-1] + [units]
    ops, params, buffers = [], [], []
    for i in range(len(widths) - 1):
        W, flat = guarded(rng.normal(scale=0.3, size=(widths[i], widths[i + 1])).astype(dtype), np.nan)
        buffers.append(flat)
        b = None
        if case["bias"]:
            b, flat = guarded(np.zeros(widths[i + 1], dtype), np.nan)
            buffers.append(flat)
        ops.append(("dense", W, b))
        params += [W] + ([b] if b is not None else [])
        last = i == len(widths) - 2
        ops.append(("activation", case["output"] if last else case["activations"][i % 3]))
        if case["dropout"] and not last:
            ops.append(("dropout", case["dropout"], 5))
    sparse = case["kind"] == "labels"
    metrics = ["sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy"] if sparse else \
        ["binary_accuracy", "categorical_accuracy", "top_k_categorical_accuracy", "mean_squared_error"]
    net = Network(ops, case["loss"], metrics, dtype)
    x, x_flat = guarded(rng.normal(size=(n, widths[0])).astype(dtype), np.nan)
    raw_y = targets(case["kind"], rng, n, units)
    y, y_flat = guarded(raw_y.astype(np.int64 if sparse else dtype), -1 if sparse else np.nan)
    w = guarded(rng.random(n).astype(dtype), np.nan)[0] if case["weighted"] else None
    order, order_flat = guarded(rng.permutation(n).astype(np.int64), 2 ** 40)
    opt = _Optimizer(case["optimizer"], params, dtype)
    hook = _StopHook(case["stop"]) if case["stop"] else None
    sums = net.train_epoch(x, y, w, order, case["batch_size"], opt, hook)
    assert np.isfinite(sums).all() or case["loss"] in ("mean_absolute_percentage_error",)
    for p in params:
        assert np.isfinite(p).all(), "a NaN guard cell was read into the weights"
    for flat in buffers:
        assert guards_intact(flat, np.nan), "the engine wrote outside a parameter array"
    evaluated = net.evaluate(x, y, w, case["batch_size"], hook)
    assert evaluated[0] <= n
    out, out_flat = guarded(np.zeros((n, units), dtype), -123.0)
    net.predict(x, case["batch_size"], out, None)
    assert guards_intact(out_flat, -123.0), "predict wrote outside `out`"
    assert np.isfinite(out).all()
    assert guards_intact(x_flat, np.nan) and guards_intact(order_flat, 2 ** 40)
    assert (guards_intact(y_flat, -1) if sparse else guards_intact(y_flat, np.nan))
