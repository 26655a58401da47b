"""The Keras 2 / tf.keras APIs scripts use on day one: np_utils, predict_classes/proba, show_accuracy, root names,
return_dict, ModelCheckpoint(initial_value_threshold=), predict's progress bar, steps_per_epoch and
validation_steps with arrays."""
import os
import warnings

import numpy as np
import pytest

import fastfit
import fastfit as keras
from fastfit.callbacks import LambdaCallback, ModelCheckpoint
from fastfit.layers import Dense
from fastfit.models import Sequential


@pytest.fixture
def data():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 3, 30)
    x = (rng.normal(0, 1, (3, 4))[labels] + rng.normal(0, 0.3, (30, 4))).astype("float32")
    return x, fastfit.utils.to_categorical(labels, 3)


def mlp(engine, units=3, activation="softmax", loss="categorical_crossentropy", metrics=None):
    model = Sequential([Dense(5, input_dim=4, activation="tanh"), Dense(units, activation=activation)])
    model.compile(optimizer="sgd", loss=loss, metrics=metrics, engine=engine)
    return model


# -- np_utils --------------------------------------------------------------------------------------------------
def test_np_utils_spellings():
    from fastfit.utils import np_utils
    from fastfit.utils.np_utils import normalize, to_categorical
    assert keras.utils.np_utils.to_categorical is to_categorical is np_utils.to_categorical
    assert fastfit.utils.to_categorical is to_categorical
    assert fastfit.utils.normalize is normalize is np_utils.normalize


def test_to_categorical_hand_computed():
    from fastfit.utils.np_utils import to_categorical
    np.testing.assert_array_equal(to_categorical([2, 0, 1]), [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    result = to_categorical(np.array([[1], [3]]), num_classes=5, dtype="int32")
    assert result.dtype == np.int32 and result.shape == (2, 5)
    np.testing.assert_array_equal(result, [[0, 1, 0, 0, 0], [0, 0, 0, 1, 0]])
    assert to_categorical([[0, 1], [1, 0]]).shape == (2, 2, 2)  # any shape: one-hot on a new last axis
    assert to_categorical([1], 0).shape == (1, 2)  # Keras: a falsy num_classes is inferred
    with pytest.warns(DeprecationWarning, match="nb_classes"):
        legacy = to_categorical([1, 0], nb_classes=3)  # Keras 1 spelling
    np.testing.assert_array_equal(legacy, [[0, 1, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match="out of range"):
        to_categorical([3], num_classes=3)


def test_normalize_hand_computed():
    from fastfit.utils.np_utils import normalize
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(normalize(x), [[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(normalize(x, axis=0), [[3 / np.sqrt(10), 1.0], [0, 0], [1 / np.sqrt(10), 0]])
    np.testing.assert_allclose(normalize(x, order=1), [[3 / 7, 4 / 7], [0, 0], [1, 0]])
    np.testing.assert_allclose(normalize([1, 1, 1, 1]), [[0.5, 0.5, 0.5, 0.5]])  # 1-D gives (1, n), as in Keras
    assert normalize(x.astype("float32")).dtype == np.float32


# -- predict_classes / predict_proba ---------------------------------------------------------------------------
def test_predict_classes_argmax_for_several_units(data, core):
    x, _ = data
    model = mlp(core)
    classes = model.predict_classes(x)
    np.testing.assert_array_equal(classes, model.predict(x).argmax(axis=-1))
    assert classes.shape == (30,)


def test_predict_classes_thresholds_one_unit_at_half(data, core):
    x, _ = data
    model = mlp(core, units=1, activation="sigmoid", loss="binary_crossentropy")
    model.layers[1].set_weights([np.ones((5, 1)), np.zeros(1)])
    classes = model.predict_classes(x)
    assert classes.shape == (30, 1) and classes.dtype == np.int32
    np.testing.assert_array_equal(classes, (model.predict(x) > 0.5).astype("int32"))
    assert 0 < classes.sum() < 30  # both classes occur: the threshold was applied


def test_predict_proba_warns_on_values_outside_zero_one(data, core):
    x, _ = data
    model = mlp(core)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(model.predict_proba(x), model.predict(x))
    linear = mlp(core, activation="linear", loss="mse")
    linear.layers[1].set_weights([np.full((5, 3), 3.0), np.full(3, -1.0)])
    with pytest.warns(UserWarning, match="invalid probability values"):
        linear.predict_proba(x)


# -- show_accuracy (Keras 0.x) ----------------------------------------------------------------------------------
def test_show_accuracy_warns_and_reports_accuracy_for_that_call(data, core):
    x, y = data
    model = mlp(core)
    with pytest.warns(DeprecationWarning, match="show_accuracy"):
        history = model.fit(x, y, epochs=2, verbose=0, show_accuracy=True, validation_split=0.2)
    assert sorted(history.history) == ["acc", "loss", "val_acc", "val_loss"]
    with pytest.warns(DeprecationWarning, match="show_accuracy"):
        _, acc = model.evaluate(x, y, verbose=0, show_accuracy=True)
    expected = np.mean(model.predict(x).argmax(1) == y.argmax(1))
    assert acc == pytest.approx(expected)
    assert model.metrics_names == ["loss"]  # compiled metrics unchanged afterwards
    assert np.isscalar(model.evaluate(x, y, verbose=0))
    with pytest.warns(DeprecationWarning):
        assert np.isscalar(model.evaluate(x, y, verbose=0, show_accuracy=False))


def test_show_accuracy_with_an_accuracy_metric_adds_nothing(data, core):
    x, y = data
    model = mlp(core, metrics=["accuracy"])
    with pytest.warns(DeprecationWarning):
        history = model.fit(x, y, epochs=1, verbose=0, show_accuracy=True)
    assert sorted(history.history) == ["accuracy", "loss"]


# -- root names, return_dict -----------------------------------------------------------------------------------
def test_root_names_as_tf_keras():
    assert keras.Input is fastfit.layers.Input
    assert keras.Sequential is fastfit.models.Sequential and keras.Model is fastfit.models.Model
    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, Dense(2)(inputs))
    assert model.output_shape == (None, 2)
    sequential = keras.Sequential()
    sequential.add(keras.Input(shape=(4,)))  # tf.keras adds the tensor's InputLayer
    sequential.add(Dense(2))
    assert sequential.output_shape == (None, 2) and len(sequential.layers) == 1


def test_return_dict(data, core):
    x, y = data
    model = mlp(core, metrics=["acc"])
    values = model.evaluate(x, y, verbose=0)
    as_dict = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(as_dict) == ["loss", "acc"] and list(as_dict.values()) == values
    assert model.test_on_batch(x, y, return_dict=True) == dict(zip(["loss", "acc"], model.test_on_batch(x, y)))
    logs = model.train_on_batch(x, y, return_dict=True)
    assert list(logs) == ["loss", "acc"]


# -- ModelCheckpoint(initial_value_threshold=) -------------------------------------------------------------------
def test_initial_value_threshold_blocks_saves_until_beaten(data, core, tmp_path):
    x, y = data
    model = mlp(core)
    path = str(tmp_path / "best.h5")
    never = ModelCheckpoint(path, monitor="loss", save_best_only=True, initial_value_threshold=0.0)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[never])
    assert not os.path.exists(path) and never.best == 0.0
    losses = []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: losses.append(logs["loss"]))
    model2 = mlp(core)
    model2.optimizer.lr = 0.5
    checkpoint = ModelCheckpoint(path, monitor="loss", save_best_only=True, initial_value_threshold=10.0)
    model2.fit(x, y, epochs=3, verbose=0, callbacks=[record, checkpoint])
    assert os.path.exists(path) and checkpoint.best == min(losses)
    maximise = ModelCheckpoint(path, monitor="acc", mode="max", initial_value_threshold=0.5)
    assert maximise.best == 0.5


# -- predict(verbose=1) -----------------------------------------------------------------------------------------
def test_predict_verbose_prints_a_progress_bar(data, core, capsys):
    x, _ = data
    model = mlp(core)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""
    model.predict(x, verbose=1)
    out = capsys.readouterr().out
    assert "30/30 [==============================]" in out


# -- steps_per_epoch / validation_steps with arrays ----------------------------------------------------------------
def count_batches():
    sizes = []
    starts = []
    callback = LambdaCallback(on_epoch_begin=lambda epoch, logs: starts.append(len(sizes)),
                              on_batch_end=lambda batch, logs: sizes.append(logs["size"]))
    return callback, sizes, starts


def test_steps_per_epoch_trains_that_many_batches(data, core):
    x, y = data  # 30 samples
    model = mlp(core)
    callback, sizes, starts = count_batches()
    history = model.fit(x, y, batch_size=4, epochs=3, steps_per_epoch=2, verbose=0, callbacks=[callback])
    assert sizes == [4] * 6 and starts == [0, 2, 4] and len(history.history["loss"]) == 3


def test_steps_per_epoch_walks_the_data_as_one_stream(data, core):
    """Each epoch continues where the previous one stopped (shuffle=False: in order, pass after pass)."""
    x, y = data
    x, y = x[:8], y[:8]
    model = mlp(core)
    twin = mlp(core)
    twin.set_weights(model.get_weights())
    model.fit(x, y, batch_size=3, epochs=4, steps_per_epoch=2, verbose=0, shuffle=False)
    stream = np.concatenate([np.arange(8)] * 4)[:24]  # 4 epochs x 2 batches of 3 rows from passes 0..2
    for start in range(0, 24, 3):
        rows = stream[start:start + 3]
        twin.train_on_batch(x[rows], y[rows])
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_steps_per_epoch_stops_when_the_passes_run_out(data, core):
    x, y = data  # 30 samples, 3 epochs: 90 rows in the stream; 3 batches of 16 = 48 rows per epoch
    model = mlp(core)
    callback, sizes, _ = count_batches()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(x, y, batch_size=16, epochs=3, steps_per_epoch=3, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) == 2  # the second epoch is cut short at the end of the stream
    assert sizes == [16, 16, 16, 16, 16, 10]


def test_steps_per_epoch_without_batch_size_splits_the_data(data, core):
    x, y = data
    model = mlp(core)
    callback, sizes, _ = count_batches()
    model.fit(x, y, epochs=1, steps_per_epoch=4, verbose=0, callbacks=[callback])
    assert sizes == [8, 8, 8, 6]


def test_steps_per_epoch_progress_bar_counts_steps(data, core, capsys):
    x, y = data
    mlp(core).fit(x, y, batch_size=5, epochs=1, steps_per_epoch=3, verbose=1)
    assert "3/3 [" in capsys.readouterr().out


def test_validation_steps_uses_the_first_batches(data, core):
    x, y = data
    model = mlp(core)
    xv, yv = x[:12], y[:12]
    history = model.fit(x, y, batch_size=5, epochs=1, verbose=0, validation_data=(xv, yv), validation_steps=2,
                        shuffle=False)
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(xv[:10], yv[:10], verbose=0))
    tested = []
    record = LambdaCallback()
    record.on_test_batch_end = lambda batch, logs: tested.append(logs["size"])
    model.fit(x, y, batch_size=5, epochs=1, verbose=0, validation_data=(xv, yv), validation_batch_size=4,
              validation_steps=2, callbacks=[record])
    assert tested == [4, 4]


@pytest.mark.parametrize("argument", ["steps_per_epoch", "validation_steps"])
def test_steps_must_be_positive(data, argument):
    with pytest.raises(ValueError, match=argument):
        mlp("python").fit(*data, verbose=0, **{argument: 0})


def test_evaluate_and_predict_steps_with_arrays(data, core):
    x, y = data
    model = mlp(core)
    assert model.evaluate(x, y, steps=2, batch_size=4, verbose=0) == pytest.approx(
        model.evaluate(x[:8], y[:8], verbose=0))
    assert model.predict(x, steps=2, batch_size=4).shape == (8, 3)
    sizes = []
    record = LambdaCallback()
    record.on_predict_batch_end = lambda batch, logs: sizes.append(logs["size"])
    assert model.predict(x, steps=4, callbacks=[record]).shape == (30, 3)  # no batch_size: 4 batches cover x
    assert sizes == [8, 8, 8, 6]
    with pytest.raises(ValueError, match="steps"):
        model.predict(x, steps=-1)


def test_predict_bar_follows_the_batches(data, core, capsys):
    """Keras 2.2 moves the bar after every batch: off a terminal each drawn update is its own line."""
    x, _ = data
    model = mlp(core)
    from fastfit.utils import progbar
    original = progbar.Progbar.__init__

    def no_throttle(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.interval = 0.0

    progbar.Progbar.__init__ = no_throttle
    try:
        model.predict(x, batch_size=10, verbose=1)
    finally:
        progbar.Progbar.__init__ = original
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [line.split(" [")[0].strip() for line in lines] == ["10/30", "20/30", "30/30"]
    model.predict(x, batch_size=10, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "ETA" not in lines[0]


def test_an_initializer_of_none_means_glorot_uniform_as_in_tf_keras():
    # tf.keras's add_weight falls back to glorot_uniform for float weights; the TensorFlow tutorial on imbalanced
    # data passes `bias_initializer=None` when it has no output bias to set.
    fastfit.utils.set_random_seed(3)
    layer = fastfit.layers.Dense(6, bias_initializer=None, input_dim=4)
    model = fastfit.Sequential([layer])
    bias = model.get_weights()[1]
    limit = np.sqrt(6.0 / (6 + 6))  # fan_in = fan_out = 6 for a 1-D weight
    assert np.all(np.abs(bias) <= limit) and np.any(bias != 0)
    assert layer.get_config()["bias_initializer"]["class_name"] == "GlorotUniform"
    assert isinstance(fastfit.layers.BatchNormalization(beta_initializer=None).beta_initializer,
                      fastfit.initializers.GlorotUniform)
