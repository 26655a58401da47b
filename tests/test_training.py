"""compile/fit/evaluate/predict behaviour on both engines."""
import json

import numpy as np
import pytest

import fastfit
from fastfit.callbacks import Callback
from fastfit.layers import Dense, Dropout, Flatten
from fastfit.models import Sequential


def small_model(engine, loss="categorical_crossentropy", metrics=("acc",), optimizer="adam", units=3):
    model = Sequential([Dense(16, input_dim=8, activation="relu"), Dense(units, activation="softmax")])
    model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics), engine=engine)
    return model


def test_fit_learns_and_history_has_plain_floats(core, classification_data):
    x, y, _ = classification_data
    model = small_model(core)
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert history is model.history
    assert set(history.history) == {"loss", "acc"}
    assert history.epoch == list(range(15))
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(type(v) is float for v in history.history["loss"])
    json.dumps(history.history)
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc > 0.9 and isinstance(loss, float)


def test_metric_key_is_the_string_given(core, classification_data):
    x, y, labels = classification_data
    model = small_model(core, metrics=["accuracy"])
    history = model.fit(x, y, epochs=1, verbose=0)
    assert "accuracy" in history.history
    sparse = small_model(core, loss="sparse_categorical_crossentropy", metrics=["acc"])
    assert sparse.fit(x, labels, epochs=1, verbose=0).history["acc"]
    assert sparse.metrics_names == ["loss", "acc"]


def test_validation_split_uses_last_samples(core, classification_data):
    x, y, _ = classification_data
    seen = {}

    class Grab(Callback):
        def on_train_begin(self, logs=None):
            seen["val"] = self.validation_data

    model = small_model(core)
    history = model.fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[Grab()])
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    np.testing.assert_array_equal(seen["val"][0], x[45:])
    assert history.params["samples"] == 45


def test_epochs_zero_runs_only_train_hooks(core, classification_data):
    x, y, _ = classification_data
    model = small_model(core)
    before = model.get_weights()
    history = model.fit(x, y, epochs=0, verbose=0)
    assert history.history == {} and history.epoch == []
    np.testing.assert_array_equal(model.get_weights()[0], before[0])


def test_initial_epoch_numbers_history(core, classification_data):
    x, y, _ = classification_data
    history = small_model(core).fit(x, y, epochs=5, initial_epoch=2, verbose=0)
    assert history.epoch == [2, 3, 4]


def test_predict_is_deterministic_with_dropout(core, classification_data):
    x, y, _ = classification_data
    model = Sequential([Dense(16, input_dim=8, activation="relu"), Dropout(0.5), Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", engine=core)
    model.fit(x, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.predict(x), model.predict(x))
    # Another batch size may round differently in BLAS (a last-bit difference); dropout would change ~half
    np.testing.assert_allclose(model.predict(x), model.predict(x, batch_size=7), rtol=1e-5, atol=1e-7)
    # ... and both are the forward pass without dropout
    w1, b1, w2, b2 = [w.astype(np.float64) for w in model.get_weights()]
    logits = np.maximum(x @ w1 + b1, 0.0) @ w2 + b2
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(model.predict(x), expected / expected.sum(axis=1, keepdims=True), rtol=1e-4,
                               atol=1e-6)


def test_same_seed_same_weights_bit_for_bit(core, classification_data):
    x, y, _ = classification_data

    def run():
        fastfit.utils.set_random_seed(7)
        model = Sequential([Dense(16, input_dim=8, activation="relu"), Dropout(0.3), Dense(3, activation="softmax")])
        model.compile("rmsprop", "categorical_crossentropy", engine=core)
        model.fit(x, y, epochs=3, batch_size=8, verbose=0)
        return model.get_weights()

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_engines_agree_after_several_epochs(classification_data):
    pytest.importorskip("fastfit._ext._loop")
    x, y, _ = classification_data
    x = x.astype("float64")
    results = []
    for engine in ("python", "cython"):
        fastfit.utils.set_random_seed(3)
        fastfit.backend.set_floatx("float64")
        try:
            model = Sequential([Dense(16, input_dim=8, activation="tanh"), Dropout(0.2),
                                Dense(3, activation="softmax")])
        finally:
            fastfit.backend.set_floatx("float32")
        model.compile(fastfit.optimizers.Adam(lr=0.01), "categorical_crossentropy", metrics=["acc"], engine=engine)
        history = model.fit(x, y, epochs=4, batch_size=7, verbose=0)
        results.append((model.get_weights(), history.history["loss"]))
    for a, b in zip(results[0][0], results[1][0]):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-8)


def test_learning_rate_is_live(core, classification_data):
    x, y, _ = classification_data
    model = small_model(core, optimizer=fastfit.optimizers.SGD(lr=0.1))
    model.optimizer.lr = 0.0
    before = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.get_weights()[0], before[0])
    fastfit.backend.set_value(model.optimizer.lr, 0.05)
    assert fastfit.backend.get_value(model.optimizer.lr) == pytest.approx(0.05)
    assert model.optimizer.learning_rate == pytest.approx(0.05)


def test_stop_training_from_batch_hook(core, classification_data):
    x, y, _ = classification_data

    class StopAfterThree(Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 2:
                self.model.stop_training = True

    history = small_model(core).fit(x, y, epochs=5, batch_size=10, verbose=0, callbacks=[StopAfterThree()])
    assert history.epoch == [0]


def test_flatten_takes_image_input(core):
    rng = np.random.default_rng(0)
    x = rng.random((20, 4, 4)).astype("float32")
    labels = rng.integers(0, 2, size=20)
    model = Sequential([Flatten(input_shape=(4, 4)), Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["acc"], engine=core)
    model.fit(x, labels, epochs=1, verbose=0)
    assert model.predict(x).shape == (20, 2)


def test_train_test_predict_on_batch(core, classification_data):
    x, y, _ = classification_data
    model = small_model(core)
    loss, acc = model.train_on_batch(x[:10], y[:10])
    assert np.isfinite(loss) and 0 <= acc <= 1
    assert len(model.test_on_batch(x[:10], y[:10])) == 2
    assert model.predict_on_batch(x[:10]).shape == (10, 3)


def test_sample_and_class_weights(core, classification_data):
    x, y, labels = classification_data
    model = small_model(core)
    zero = model.evaluate(x, y, sample_weight=np.zeros(len(x)), verbose=0)
    assert zero[0] == 0.0
    model.fit(x, y, class_weight={0: 1.0, 1: 2.0, 2: 0.5}, epochs=1, verbose=0)


def test_legacy_nb_epoch_warns(core, classification_data):
    x, y, _ = classification_data
    with pytest.warns(DeprecationWarning, match="epochs"):
        history = small_model(core).fit(x, y, nb_epoch=2, verbose=0)
    assert len(history.epoch) == 2
    with pytest.raises(TypeError, match="nb_epoch"):
        small_model(core).fit(x, y, nb_epoch=2, epochs=3, verbose=0)
    with pytest.raises(TypeError, match="Unrecognized"):
        small_model(core).fit(x, y, epochz=2)


def test_float64_models(core, classification_data):
    x, y, _ = classification_data
    fastfit.backend.set_floatx("float64")
    try:
        model = small_model(core)
    finally:
        fastfit.backend.set_floatx("float32")
    model.fit(x, y, epochs=1, verbose=0)
    assert model.get_weights()[0].dtype == np.float64
    assert model.predict(x).dtype == np.float64


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_output_is_printed(core, classification_data, capsys, verbose):
    x, y, _ = classification_data
    small_model(core).fit(x, y, epochs=2, verbose=verbose, validation_split=0.2)
    out = capsys.readouterr().out
    assert "Train on 48 samples, validate on 12 samples" in out
    assert "Epoch 2/2" in out and "val_loss" in out




def test_model_without_input_shape_compiles_and_builds_at_fit(core):
    # tf.keras's deferred build (was: compile refused); tests/bridges/test_deferred_build.py has the rest.
    model = Sequential([Dense(2)])
    model.compile("sgd", "mse", engine=core)
    with pytest.raises(ValueError, match="not yet been built"):
        model.summary()
    model.fit(np.ones((4, 3), dtype="float32"), np.ones((4, 2), dtype="float32"), epochs=1, verbose=0)
    assert model.input_shape == (None, 3)


def test_callback_may_evaluate_and_predict_its_own_model_at_epoch_end(core, classification_data):
    x, y, _ = classification_data
    scores = []

    class Probe(Callback):
        def on_epoch_end(self, epoch, logs=None):
            scores.append((self.model.evaluate(x, y, verbose=0), self.model.predict(x[:2])))

    model = small_model(core)
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[Probe()])
    assert len(scores) == 2
    assert scores[-1][0][0] == pytest.approx(model.evaluate(x, y, verbose=0)[0])
    assert len(history.epoch) == 2
