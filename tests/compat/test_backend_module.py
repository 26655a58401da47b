"""`fastfit.backend` (the `K` of Keras scripts) and the submodules `import fastfit as keras` exposes."""
import importlib
import json

import numpy as np
import pytest

import fastfit
import fastfit as keras
import fastfit.backend as K
from fastfit.layers import Dense
from fastfit.models import Sequential


@pytest.fixture(autouse=True)
def _restore_floatx():
    yield
    K.set_floatx("float32")


@pytest.mark.parametrize("name", ["callbacks", "models", "layers", "optimizers", "backend", "losses", "metrics",
                                  "utils", "initializers", "activations"])
def test_import_fastfit_as_keras_exposes_submodules(name):
    module = getattr(keras, name)
    assert module is importlib.import_module(f"fastfit.{name}")


def test_names_the_seeds_use_through_the_package():
    assert keras.callbacks.Callback is importlib.import_module("fastfit.callbacks").Callback
    assert keras.models.Model is fastfit.Model and keras.models.Sequential is fastfit.Sequential
    assert keras.layers.Dense is Dense
    assert keras.backend is K


def test_floatx_and_epsilon_defaults():
    assert K.floatx() == "float32"
    assert K.epsilon() == 1e-7


def test_set_floatx_changes_new_layers():
    K.set_floatx("float64")
    assert K.floatx() == "float64"
    model = Sequential([Dense(2, input_dim=3)])
    assert all(w.dtype == np.float64 for w in model.get_weights())
    K.set_floatx(np.float32)
    assert K.floatx() == "float32"


@pytest.mark.parametrize("bad", ["float16", "int32", "double-ish"])
def test_set_floatx_rejects_other_types(bad):
    with pytest.raises((ValueError, TypeError), match="float32"):
        K.set_floatx(bad)
    assert K.floatx() == "float32"


def test_get_value_passes_plain_numbers_through():
    assert K.get_value(0.5) == 0.5 and type(K.get_value(0.5)) is float
    assert K.get_value(3) == 3
    value = K.get_value(np.float32(0.25))
    assert value == 0.25 and type(value) is float
    assert type(K.get_value(np.array(2.5))) is float
    array = np.arange(3.0)
    copy = K.get_value(array)
    np.testing.assert_array_equal(copy, array)
    copy[0] = 9
    assert array[0] == 0


def test_get_value_rejects_non_numbers():
    with pytest.raises(TypeError, match="get_value"):
        K.get_value("0.1")


def test_optimizer_lr_through_get_and_set_value():
    optimizer = fastfit.optimizers.SGD(lr=0.1)
    lr = K.get_value(optimizer.lr)
    assert lr == pytest.approx(0.1) and type(lr) is float
    json.dumps({"lr": lr})
    K.set_value(optimizer.lr, 0.05)
    assert K.get_value(optimizer.lr) == pytest.approx(0.05)
    assert K.get_value(optimizer.learning_rate) == pytest.approx(0.05)
    K.set_value(optimizer.lr, np.float64(0.02))  # what LearningRateScheduler schedules may return
    assert optimizer.lr == pytest.approx(0.02)


def test_set_value_writes_arrays_in_place():
    array = np.zeros(3)
    K.set_value(array, [1, 2, 3])
    np.testing.assert_array_equal(array, [1, 2, 3])


def test_set_value_on_a_plain_number_is_a_clear_error():
    with pytest.raises(TypeError, match="set_value"):
        K.set_value(0.1, 0.2)


def test_set_value_rejects_invalid_learning_rate():
    optimizer = fastfit.optimizers.Adam()
    with pytest.raises((TypeError, ValueError), match="lr"):
        K.set_value(optimizer.lr, "fast")
    with pytest.raises(ValueError, match="lr"):
        K.set_value(optimizer.lr, -1.0)
    assert K.get_value(optimizer.lr) == pytest.approx(0.001)


def test_learning_rate_set_in_a_callback_reaches_training(core):
    """`K.set_value(model.optimizer.lr, 0.0)` from a callback freezes the weights from the next batch."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 3)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer=fastfit.optimizers.SGD(lr=0.1), loss="mse", engine=core)
    snapshots = []

    class Freeze(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                K.set_value(self.model.optimizer.lr, 0.0)
                snapshots.append(self.model.get_weights())

    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[Freeze()])
    for before, after in zip(snapshots[0], model.get_weights()):
        np.testing.assert_array_equal(before, after)
