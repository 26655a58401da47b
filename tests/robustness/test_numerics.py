"""Numerical safety: non-finite losses are reported, and large logits never overflow."""
import warnings

import numpy as np
import pytest

import fastfit
from fastfit import activations, callbacks, losses
from fastfit.layers import Dense
from fastfit.models import Sequential

BATCH, BAD_BATCH = 4, 3


def exploding_model(engine):
    """exp(x) as output: finite for every sample but the one of batch 3, where it overflows to inf."""
    fastfit.utils.set_random_seed(0)
    net = Sequential([Dense(1, input_dim=1, activation="exponential", kernel_initializer="ones")])
    net.compile("sgd", "mean_squared_error", engine=engine)
    x = np.full((24, 1), 0.5, np.float32)
    x[BAD_BATCH * BATCH + 1] = 200.0  # exp(200) overflows float32
    return net, x, np.ones((24, 1), np.float32)


def test_terminate_on_nan_stops_at_that_batch(core):
    net, x, y = exploding_model(core)
    history = net.fit(x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0,
                      callbacks=[callbacks.TerminateOnNaN()])
    assert len(history.history["loss"]) == 1
    assert not np.isfinite(history.history["loss"][0])
    assert net.optimizer.iterations == BAD_BATCH + 1  # batches 0..3 ran, nothing after the bad one


def test_nonfinite_loss_without_terminate_on_nan_is_logged_and_warned(core):
    net, x, y = exploding_model(core)
    with pytest.warns(RuntimeWarning) as record:
        history = net.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    assert not np.isfinite(history.history["loss"][0])  # no exception; the epoch logs show the nan/inf
    messages = [str(w.message) for w in record]
    assert any("Epoch 1" in m and ("nan" in m or "inf" in m) for m in messages), messages


def test_nonfinite_loss_warning_names_the_batch(core):
    net, x, y = exploding_model(core)
    with pytest.warns(RuntimeWarning) as record:
        net.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    assert any(f"batch {BAD_BATCH}" in str(w.message) for w in record)


# -- large logits ------------------------------------------------------------------------------------------------------
LOGITS = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, -1e4]])


@pytest.mark.parametrize("name", ["softmax", "sigmoid", "softplus", "tanh", "elu", "selu", "softsign",
                                  "hard_sigmoid", "relu", "linear"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_functions_do_not_overflow(name, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning fails the test
        with np.errstate(over="raise", invalid="raise"):
            out = np.asarray(getattr(activations, name)(LOGITS.astype(dtype)))
    assert np.isfinite(out).all()
    if name == "softmax":
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    if name in ("sigmoid", "hard_sigmoid"):
        assert ((out >= 0) & (out <= 1)).all()


# (loss, output activation, targets for LOGITS' three rows)
LOSS_CASES = [
    ("categorical_crossentropy", "softmax", np.eye(3)[[1, 0, 2]]),
    ("sparse_categorical_crossentropy", "softmax", np.array([1, 0, 2])),
    ("kullback_leibler_divergence", "softmax", np.eye(3)[[1, 0, 2]]),
    ("categorical_hinge", "softmax", np.eye(3)[[1, 0, 2]]),
    ("binary_crossentropy", "sigmoid", np.array([[0, 1, 1], [1, 0, 0], [1, 1, 0]])),
    ("logcosh", "linear", np.zeros((3, 3))),
    ("poisson", "softplus", np.ones((3, 3))),
    ("mean_squared_logarithmic_error", "softplus", np.ones((3, 3))),
    ("mean_absolute_percentage_error", "linear", np.ones((3, 3))),
    ("cosine_proximity", "linear", np.ones((3, 3))),
    ("squared_hinge", "tanh", np.ones((3, 3))),
]


@pytest.mark.parametrize("loss, activation, targets", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_logits_give_finite_loss_gradient_and_output(core, loss, activation, targets, dtype):
    """Pre-activations of +-1e4 (x is the identity row, the kernel holds the logits)."""
    net = Sequential([Dense(3, input_dim=3, activation=activation, use_bias=False, dtype=dtype)])
    net.compile(fastfit.optimizers.SGD(lr=1e-6), loss, engine=core)
    net.set_weights([LOGITS.astype(dtype)])
    x = np.eye(3, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy overflow warnings, and fit's non-finite warning
        value = net.evaluate(x, targets, verbose=0)
        out = net.predict(x)
        net.fit(x, targets, batch_size=3, epochs=1, verbose=0)
    assert np.isfinite(value)
    assert np.isfinite(out).all()
    assert np.isfinite(net.get_weights()[0]).all()


@pytest.mark.parametrize("name", ["categorical_crossentropy", "binary_crossentropy", "logcosh",
                                  "kullback_leibler_divergence", "poisson"])
def test_loss_functions_on_extreme_predictions(name):
    y_true = np.array([[0.0, 1.0, 0.0]])
    for y_pred in (np.array([[1.0, 0.0, 0.0]]), np.array([[1e4, -1e4, 1e-30]])):
        if name in ("categorical_crossentropy", "binary_crossentropy", "kullback_leibler_divergence", "poisson"):
            y_pred = np.clip(y_pred, 0, 1)  # these take probabilities / rates
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            value = np.asarray(getattr(losses, name)(y_true, y_pred))
        assert np.isfinite(value).all(), (name, y_pred, value)
