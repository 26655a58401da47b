"""The Cython engine against the NumPy reference engine, from the same weights and batch order.

After several epochs (with shuffling, dropout, sample weights and a partial last batch) weights, optimizer
slots, returned sums, per-batch hook stats and predictions agree: float64 within 1e-8 relative, float32
within 1e-4.
"""
import numpy as np
import pytest

from core_helpers import DTYPES, Hook, Network, Optimizer, make_data, make_ops

reference = pytest.importorskip("fastfit._reference.loop")

RTOL = {np.float32: 1e-4, np.float64: 1e-8}
LOSS_ACTIVATION = {
    "mean_squared_error": "tanh", "mean_absolute_error": "linear", "mean_absolute_percentage_error": "linear",
    "mean_squared_logarithmic_error": "softplus", "squared_hinge": "tanh", "hinge": "linear",
    "categorical_hinge": "softmax", "logcosh": "linear", "categorical_crossentropy": "softmax",
    "sparse_categorical_crossentropy": "softmax", "binary_crossentropy": "sigmoid",
    "kullback_leibler_divergence": "softmax", "poisson": "softplus", "cosine_proximity": "linear",
    "categorical_crossentropy_from_logits": "linear", "sparse_categorical_crossentropy_from_logits": "linear",
    "binary_crossentropy_from_logits": "linear",
}
DENSE_METRICS = ["binary_accuracy", "categorical_accuracy", "top_k_categorical_accuracy",
                 "mean_absolute_error", "categorical_crossentropy", "cosine_proximity",
                 ("binary_accuracy", 0.5)]
SPARSE_METRICS = ["sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy",
                  "sparse_categorical_crossentropy"]


def run(engine, dtype, sizes, activations, loss, metrics, kind, hyper, epochs=3, n=11, batch=4,
        dropout=None, weights=False, extra_ops=()):
    """Train with `engine`'s Network; return everything observable."""
    ops, params = make_ops(dtype, sizes, activations, dropout=dropout)
    ops += list(extra_ops)
    x, y = make_data(dtype, n, sizes[0], sizes[-1], loss)
    w = np.random.default_rng(7).uniform(0, 2, n).astype(dtype) if weights else None
    if weights:
        w[1] = 0
    net = engine(ops, loss, metrics, dtype)
    opt = Optimizer(kind, params, **hyper)
    hook = Hook(begin=False)
    rng = np.random.default_rng(11)
    sums = [net.train_epoch(x, y, w, rng.permutation(n).astype(np.int64), batch, opt, hook)
            for _ in range(epochs)]
    evaluated = net.evaluate(x, y, w, 3, None)
    out = np.zeros((n, sizes[-1]), dtype)
    net.predict(x, 5, out, None)
    return dict(params=params, slots=[a for s in opt.slots for a in s], sums=sums, evaluated=evaluated,
                stats=[c[3] for c in hook.calls], out=out, iterations=opt.iterations,
                m_schedule=opt.m_schedule)


def compare(dtype, **kwargs):
    got = run(Network, dtype, **kwargs)
    want = run(reference.Network, dtype, **kwargs)
    rtol = RTOL[dtype]
    assert got["iterations"] == want["iterations"]
    assert got["m_schedule"] == pytest.approx(want["m_schedule"], rel=1e-12)
    for key in ("params", "slots", "sums", "stats"):
        assert len(got[key]) == len(want[key])
        for a, b in zip(got[key], want[key]):
            scale = max(np.abs(b).max(), 1e-3) if np.size(b) else 1
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale * 1e-2, err_msg=key)
    for key in ("evaluated", "out"):
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=rtol * 1e-2, err_msg=key)


@DTYPES
@pytest.mark.parametrize("activation", list(reference.activations.ACTIVATIONS)
                         if hasattr(reference, "activations") else [])
def test_activations(dtype, activation):
    compare(dtype, sizes=[4, 5, 3], activations=[activation, "linear"], loss="mean_squared_error",
            metrics=["mean_absolute_error"], kind="adam", hyper={}, dropout={0: (0.3, 3)})


@DTYPES
@pytest.mark.parametrize("loss", sorted(LOSS_ACTIVATION))
def test_losses(dtype, loss):
    metrics = SPARSE_METRICS if loss.startswith("sparse_") else DENSE_METRICS
    compare(dtype, sizes=[4, 6, 3], activations=["relu", LOSS_ACTIVATION[loss]], loss=loss, metrics=metrics,
            kind="rmsprop", hyper={}, weights=True)


@DTYPES
@pytest.mark.parametrize("loss, extra", [("categorical_crossentropy", "sigmoid"),
                                         ("binary_crossentropy", "softmax"),
                                         ("sparse_categorical_crossentropy", "sigmoid")])
def test_unfused_and_separate_activation_ops(dtype, loss, extra):
    metrics = SPARSE_METRICS if loss.startswith("sparse") else ["binary_accuracy"]
    compare(dtype, sizes=[4, 6, 3], activations=["elu", "linear"], loss=loss, metrics=metrics, kind="sgd",
            hyper={}, extra_ops=[("activation", "tanh"), ("dropout", 0.2, 4), ("activation", extra)])


@DTYPES
@pytest.mark.parametrize("kind, hyper", [
    ("sgd", dict(momentum=0.0, nesterov=False, decay=0.01)), ("sgd", dict(momentum=0.9, nesterov=False)),
    ("sgd", dict(momentum=0.9, nesterov=True)), ("rmsprop", dict(decay=0.05)), ("adagrad", {}),
    ("adadelta", {}), ("adam", {}), ("adam", dict(amsgrad=True, decay=0.01)), ("adamax", {}), ("nadam", {}),
])
def test_optimizers(dtype, kind, hyper):
    compare(dtype, sizes=[4, 6, 5, 3], activations=["tanh", "sigmoid", "softmax"],
            loss="categorical_crossentropy", metrics=["categorical_accuracy"], kind=kind, hyper=hyper,
            dropout={1: (0.5, 2)}, weights=True)


@DTYPES
@pytest.mark.parametrize("batch", [1, 4, 11, 100])
def test_batch_sizes(dtype, batch):
    compare(dtype, sizes=[4, 6, 3], activations=["relu", "softmax"], loss="sparse_categorical_crossentropy",
            metrics=["sparse_categorical_accuracy"], kind="adam", hyper={}, batch=batch, dropout={0: (0.5, 1)})
