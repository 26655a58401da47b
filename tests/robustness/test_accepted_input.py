"""Inputs that look odd but are valid: converted once, trained on, same result as the canonical form."""
import numpy as np
import pytest

from .helpers import FEATURES, assert_trains, data, model

X, LABELS, ONEHOT = data()


def trained_weights(engine, x, y, **kwargs):
    net = model(engine)
    net.fit(x, y, verbose=0, shuffle=False, **{"batch_size": 8, "epochs": 2, **kwargs})
    return net.get_weights()


def assert_weights_equal(a, b):
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("form", ["float64", "list", "non-contiguous", "fortran", "int", "bool", "list-of-one"])
def test_converted_inputs_train_like_float32(core, form):
    x, y = X, ONEHOT
    if form == "float64":
        x, y = X.astype(np.float64), ONEHOT.astype(np.float64)
    elif form == "list":
        x, y = X.tolist(), ONEHOT.tolist()
    elif form == "non-contiguous":
        wide = np.zeros((len(X), 2 * FEATURES), np.float32)
        wide[:, ::2] = X
        x = wide[:, ::2]
        assert not x.flags.c_contiguous
    elif form == "fortran":
        x = np.asfortranarray(X)
    elif form == "int":
        x, y = np.rint(X), ONEHOT.astype(np.int64)
        x = x.astype(np.int32)
    elif form == "bool":
        x, y = X > 0.5, ONEHOT.astype(bool)
    elif form == "list-of-one":
        x = [X]
    expected_x = np.asarray(x[0] if form == "list-of-one" else x, dtype=np.float32)
    expected = trained_weights(core, np.ascontiguousarray(expected_x), np.asarray(y, np.float32))
    assert_weights_equal(trained_weights(core, x, y), expected)


def test_input_array_is_not_modified(core):
    x = X.copy()
    y = ONEHOT.copy()
    trained_weights(core, x, y, validation_split=0.25)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(y, ONEHOT)


def test_one_sample(core):
    net = model(core)
    history = net.fit(X[:1], ONEHOT[:1], batch_size=32, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert net.predict(X[:1]).shape == (1, 3)
    assert np.isfinite(net.evaluate(X[:1], ONEHOT[:1], verbose=0)).all()


@pytest.mark.parametrize("batch_size", [len(X) + 1, 10 ** 6, 2 ** 62, 2 ** 63, 2 ** 80])
def test_batch_larger_than_data_is_one_batch(core, batch_size):
    expected = trained_weights(core, X, ONEHOT, batch_size=len(X))
    assert_weights_equal(trained_weights(core, X, ONEHOT, batch_size=batch_size), expected)
    net = model(core)
    np.testing.assert_allclose(net.predict(X, batch_size=batch_size), net.predict(X, batch_size=5), rtol=1e-5)
    assert np.isfinite(net.evaluate(X, ONEHOT, batch_size=batch_size, verbose=0)).all()


def test_partial_last_batch(core):
    net = model(core)
    history = net.fit(X[:23], ONEHOT[:23], batch_size=5, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    np.testing.assert_allclose(net.predict(X[:23], batch_size=5), net.predict(X[:23], batch_size=23), rtol=1e-5)


def test_epochs_zero_changes_nothing(core):
    net = model(core)
    before = net.get_weights()
    history = net.fit(X, ONEHOT, epochs=0, verbose=0)
    assert history.history == {}
    assert_weights_equal(net.get_weights(), before)
    assert net.optimizer.iterations == 0
    assert_trains(net)


def test_initial_epoch_at_epochs_trains_nothing(core):
    net = model(core)
    before = net.get_weights()
    net.fit(X, ONEHOT, epochs=3, initial_epoch=3, verbose=0)
    assert_weights_equal(net.get_weights(), before)


def test_zero_sample_weights_give_zero_loss(core):
    net = model(core)
    before = net.get_weights()
    history = net.fit(X, ONEHOT, sample_weight=np.zeros(len(X)), epochs=1, verbose=0)
    assert history.history["loss"] == [0.0]
    assert_weights_equal(net.get_weights(), before)  # a zero gradient with SGD leaves the weights alone


def test_sparse_labels_as_column_and_float(core):
    net = model(core, loss="sparse_categorical_crossentropy", metrics=())
    history = net.fit(X, LABELS[:, None].astype(np.float32), verbose=0, epochs=1)
    assert np.isfinite(history.history["loss"][0])
    assert_trains(net, "sparse_categorical_crossentropy")


def test_class_weight_with_numpy_keys(core):
    net = model(core)
    history = net.fit(X, ONEHOT, class_weight={np.int64(0): 1.0, 1: 2.0, 2: np.float32(0.5)}, verbose=0)
    assert np.isfinite(history.history["loss"][0])
