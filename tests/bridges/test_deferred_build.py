"""A Sequential model without an input shape builds from the first data it sees, as in tf.keras."""
import numpy as np
import pytest

import fastfit
from fastfit.layers import Dense, Dropout
from fastfit.models import Sequential

NOT_BUILT = "This model has not yet been built"


def _data(n=40, features=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")
    return x, y


def _stack(input_dim=None):
    first = Dense(8, activation="relu") if input_dim is None else Dense(8, activation="relu", input_dim=input_dim)
    return Sequential([first, Dropout(0.2), Dense(1, activation="sigmoid")])


def test_fit_builds_from_x_and_trains_like_a_model_given_its_shape(core):
    x, y = _data()
    fastfit.utils.set_random_seed(7)
    deferred = _stack()
    deferred.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acc"], engine=core)
    assert not deferred.built and deferred.compiled
    deferred_history = deferred.fit(x, y, epochs=3, batch_size=8, verbose=0)
    fastfit.utils.set_random_seed(7)
    given = _stack(input_dim=5)
    given.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acc"], engine=core)
    given_history = given.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert deferred.built and deferred.input_shape == (None, 5) and deferred.output_shape == (None, 1)
    assert deferred.metrics_names == ["loss", "acc"]
    assert deferred_history.history == given_history.history
    for a, b in zip(deferred.get_weights(), given.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("first_call", ["evaluate", "predict", "train_on_batch", "test_on_batch", "build"])
def test_every_entry_point_builds(core, first_call):
    x, y = _data()
    model = _stack()
    optimizer = fastfit.optimizers.SGD(0.1)
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"], engine=core)
    if first_call == "evaluate":
        loss, acc = model.evaluate(x, y, verbose=0)
        assert np.isfinite(loss) and 0 <= acc <= 1
    elif first_call == "predict":
        assert model.predict(x).shape == (40, 1)
    elif first_call == "build":
        model.build((None, 5))
    else:
        getattr(model, first_call)(x, y)
    assert model.input_shape == (None, 5)
    assert model.optimizer is optimizer  # the compile that waited for the build keeps the user's optimizer
    model.fit(x, y, epochs=1, verbose=0)
    assert optimizer.iterations > 0


def test_uncompiled_model_predicts_after_building_from_x(core):
    x, _ = _data(features=3)
    model = Sequential([Dense(4), Dense(2, activation="softmax")])
    assert model.predict(x).shape == (40, 2)
    assert [w.shape for w in model.get_weights()] == [(3, 4), (4,), (4, 2), (2,)]


def test_images_build_with_their_sample_shape(core):
    x = np.random.default_rng(1).random((12, 4, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(12) % 3]
    model = Sequential([fastfit.layers.Flatten(), Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", metrics=["acc"], engine=core)
    model.fit(x, y, epochs=1, verbose=0)
    assert model.input_shape == (None, 4, 4) and model.layers[1].get_weights()[0].shape == (16, 3)


def test_before_the_build_summary_weights_and_saving_raise_keras_error(tmp_path):
    model = _stack()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    for call in (model.summary, model.get_weights, lambda: model.save(str(tmp_path / "m.h5")),
                 lambda: model.save_weights(str(tmp_path / "w.h5"))):
        with pytest.raises(ValueError, match=NOT_BUILT):
            call()
    assert not list(tmp_path.iterdir())


def test_a_built_model_keeps_its_shape_and_refuses_other_data():
    x, y = _data(features=5)
    model = _stack()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"expects samples of shape \(5,\)"):
        model.predict(np.zeros((3, 6), dtype="float32"))


def test_one_dimensional_x_cannot_give_a_shape():
    model = _stack()
    with pytest.raises(ValueError, match=r"samples axis and a features axis.*\(40,\)"):
        model.predict(np.zeros(40, dtype="float32"))
    assert not model.built


def test_a_shape_the_layers_refuse_leaves_the_model_unbuilt():
    model = Sequential([Dense(4), fastfit.layers.Flatten()])
    with pytest.raises(ValueError, match="expects 2-D input"):
        model.build((None,))
    assert not model.built
    model.build((None, 3))  # a later good shape still builds
    assert model.output_shape == (None, 4)


def test_compile_still_checks_its_arguments_before_the_build():
    model = _stack()
    with pytest.raises(ValueError):
        model.compile(optimizer="adam", loss="no_such_loss")
    with pytest.raises(ValueError):
        model.compile(optimizer="no_such_optimizer", loss="mse")
    assert not model.compiled


def test_an_empty_model_still_refuses_compile():
    with pytest.raises(ValueError, match="no input shape yet"):
        Sequential().compile(optimizer="adam", loss="mse")


def test_boston_housing_script_with_a_model_without_input_shape(core, tmp_path, monkeypatch):
    """Deep Learning with Python (2nd ed.) chapter 4: keras.Sequential of Dense layers without an input shape,
    compiled with metrics=['mae'], trained on boston_housing.load_data()."""
    (tmp_path / "datasets").mkdir()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 13))
    np.savez(tmp_path / "datasets" / "boston_housing.npz", x=x, y=x[:, 5] * 3 + 22)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (train_data, train_targets), (test_data, test_targets) = fastfit.datasets.boston_housing.load_data()
    model = fastfit.Sequential([fastfit.layers.Dense(16, activation="relu"),
                                fastfit.layers.Dense(16, activation="relu"),
                                fastfit.layers.Dense(1)])
    model.compile(optimizer="rmsprop", loss="mse", metrics=["mae"], engine=core)
    model.fit(train_data, train_targets, epochs=5, batch_size=16, verbose=0)
    mse, mae = model.evaluate(test_data, test_targets, verbose=0)
    assert model.input_shape == (None, 13) and np.isfinite(mse) and 0 <= mae <= 100
    assert model.predict(test_data).shape == (10, 1)


def test_a_compile_that_fails_at_the_build_leaves_the_model_uncompiled(monkeypatch):
    from fastfit import metrics
    real = metrics.resolve

    def refuse_at_build(identifier, loss, units):
        if units is not None:
            raise ValueError(f"metric {identifier!r} does not fit {units} units")
        return real(identifier, loss, units)

    model = _stack()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acc"])
    monkeypatch.setattr(metrics, "resolve", refuse_at_build)
    with pytest.raises(ValueError, match="does not fit 1 units"):
        model.build((None, 5))
    assert model.built and not model.compiled
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(*_data(), verbose=0)
