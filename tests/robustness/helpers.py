"""Shared helpers of the robustness tests: tiny seeded models and the "rejected call" check."""
import numpy as np
import pytest

import fastfit
from fastfit.layers import Dense
from fastfit.models import Sequential

N, FEATURES, UNITS = 24, 4, 3


def data(n=N, seed=0):
    """Seeded float32 inputs, integer labels and one-hot targets for a 3-class problem."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, UNITS, n)
    x = (rng.normal(size=(n, FEATURES)) + labels[:, None]).astype("float32")
    return x, labels, np.eye(UNITS, dtype="float32")[labels]


def model(engine, loss="categorical_crossentropy", compiled=True, units=UNITS, activation="softmax",
          optimizer="sgd", metrics=("acc",)):
    """A compiled 4-5-3 MLP on `engine`."""
    fastfit.utils.set_random_seed(7)
    net = Sequential([Dense(5, input_dim=FEATURES, activation="tanh"), Dense(units, activation=activation)])
    if compiled:
        net.compile(optimizer=optimizer, loss=loss, metrics=list(metrics), engine=engine)
    return net


def snapshot(net):
    """Weights and optimizer state, to show that a rejected call changed nothing."""
    weights = [w.copy() for w in net.get_weights()]
    opt = getattr(net, "optimizer", None)
    return weights, (None if opt is None else opt.get_weights())


def assert_same(before, after):
    for a, b in zip(before[0], after[0]):
        np.testing.assert_array_equal(a, b)
    assert len(before[0]) == len(after[0])
    if before[1] is not None:
        # fit builds the optimizer's slots lazily: a rejected fit may leave freshly zeroed slots behind.
        np.testing.assert_array_equal(before[1][0], after[1][0])  # iterations
        if len(before[1]) == len(after[1]):
            for a, b in zip(before[1], after[1]):
                np.testing.assert_array_equal(a, b)
        else:
            assert len(before[1]) == 1 and all(not np.any(s) for s in after[1][1:])


def assert_message(error, fragments):
    """Every fragment (a string, matched case-insensitively) appears in the exception message."""
    exc = error.value
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    missing = [f for f in fragments if f.lower() not in text.lower()]
    assert not missing, f"message {text!r} lacks {missing}"


def assert_trains(net, loss="categorical_crossentropy"):
    """The model still trains: one epoch on good data runs and changes the weights, which stay finite."""
    x, labels, onehot = data()
    y = labels if loss == "sparse_categorical_crossentropy" else onehot
    before = net.get_weights()
    net.fit(x, y, batch_size=8, epochs=1, verbose=0)
    after = net.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def rejected(net, call, error_type, fragments, loss="categorical_crossentropy", unchanged=True):
    """Run `call(net)`, expecting `error_type` with all `fragments`; the model is unchanged and trains."""
    before = snapshot(net)
    with pytest.raises(error_type) as error:
        call(net)
    assert_message(error, fragments)
    if unchanged:
        assert_same(before, snapshot(net))
    assert_trains(net, loss)
    return error
