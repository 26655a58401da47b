"""save/load round trips: architecture, weights, training config, optimizer state; weights-only files."""
import os

import numpy as np
import pytest

import fastfit
from fastfit import optimizers
from fastfit.layers import Dense, Input
from fastfit.models import Model, Sequential, load_model

from saving_helpers import CLASSES, FEATURES, assert_same_weights, data, mlp

OPTIMIZERS = {"sgd": lambda: optimizers.SGD(lr=0.05, momentum=0.9, nesterov=True),
              "rmsprop": lambda: optimizers.RMSprop(decay=0.01), "adagrad": optimizers.Adagrad,
              "adadelta": optimizers.Adadelta, "amsgrad": lambda: optimizers.Adam(amsgrad=True),
              "adamax": optimizers.Adamax, "nadam": optimizers.Nadam}


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_model_round_trip_restores_everything(tmp_path, core, kind):
    optimizer = OPTIMIZERS[kind]()
    model = mlp(core, optimizer=optimizer)
    x, y = data()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "m.h5"
    model.save(path)  # path-like accepted
    loaded = load_model(path)
    assert type(loaded) is Sequential and [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert_same_weights(loaded, model)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.compiled and loaded.loss == model.loss and loaded.metrics_names == model.metrics_names
    assert type(loaded.optimizer) is type(optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    for a, b in zip(loaded.optimizer.get_weights(), model.optimizer.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


def test_include_optimizer_false_and_compile_false(tmp_path):
    model = mlp()
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "m.h5")
    model.save(path, include_optimizer=False)
    with pytest.warns(UserWarning, match="not compiled"):
        loaded = load_model(path)
    assert not loaded.compiled
    assert_same_weights(loaded, model)
    model.save(path)
    loaded = load_model(path, compile=False)
    assert not loaded.compiled
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_uncompiled_model_saves_and_loads(tmp_path):
    model = mlp(compile=False)
    path = str(tmp_path / "m.h5")
    model.save(path)
    assert_same_weights(load_model(path, compile=False), model)


def test_functional_model_round_trip(tmp_path):
    inputs = Input(shape=(FEATURES,))
    hidden = Dense(7, activation="relu", name="hidden")(inputs)
    outputs = Dense(CLASSES, activation="softmax", name="out")(hidden)
    model = Model(inputs, outputs)
    model.compile("rmsprop", "categorical_crossentropy")
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "f.h5")
    model.save(path)
    loaded = load_model(path)
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer.iterations == model.optimizer.iterations


def test_save_weights_and_load_weights_by_order(tmp_path):
    model = mlp()
    path = str(tmp_path / "w.h5")
    model.save_weights(path)
    other = mlp(seed=99)  # same architecture, other initial weights
    assert not np.array_equal(other.get_weights()[0], model.get_weights()[0])
    other.load_weights(path)
    assert_same_weights(other, model)
    other = mlp(seed=99)
    other.load_weights(str(tmp_path / "w.h5"))  # a full model file works too
    model.save(str(tmp_path / "m.h5"))
    other = mlp(seed=98)
    other.load_weights(str(tmp_path / "m.h5"))
    assert_same_weights(other, model)


def test_load_weights_by_name_loads_matching_layers_only(tmp_path):
    source = Sequential([Dense(5, input_dim=FEATURES, name="shared"), Dense(2, name="head_a")])
    path = str(tmp_path / "w.h5")
    source.save_weights(path)
    target = Sequential([Dense(5, input_dim=FEATURES, name="shared"), Dense(4, name="head_b")])
    head_before = target.layers[1].get_weights()
    target.load_weights(path, by_name=True)
    for a, b in zip(target.layers[0].get_weights(), source.layers[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(target.layers[1].get_weights(), head_before):
        np.testing.assert_array_equal(a, b)


def test_weight_shape_mismatch_names_layer_and_shapes_and_changes_nothing(tmp_path):
    source = Sequential([Dense(7, input_dim=FEATURES, name="a"), Dense(3, name="b")])
    path = str(tmp_path / "w.h5")
    source.save_weights(path)
    target = Sequential([Dense(5, input_dim=FEATURES, name="a"), Dense(3, name="b")])
    before = target.get_weights()
    with pytest.raises(ValueError) as error:
        target.load_weights(path)
    message = str(error.value)
    assert "'a'" in message and f"({FEATURES}, 7)" in message and f"({FEATURES}, 5)" in message
    for a, b in zip(target.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="'a'"):
        target.load_weights(path, by_name=True)


def test_layer_count_mismatch(tmp_path):
    source = Sequential([Dense(3, input_dim=FEATURES)])
    path = str(tmp_path / "w.h5")
    source.save_weights(path)
    with pytest.raises(ValueError, match="1 layers"):
        mlp().load_weights(path)


def test_overwrite_false_raises_and_keeps_the_file(tmp_path):
    model = mlp()
    path = tmp_path / "m.h5"
    path.write_bytes(b"previous")
    for save in (lambda: model.save(str(path), overwrite=False),
                 lambda: model.save_weights(str(path), overwrite=False)):
        with pytest.raises(FileExistsError, match="overwrite"):
            save()
        assert path.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["m.h5"]
    model.save(str(tmp_path / "new.h5"), overwrite=False)  # a new file is fine


def test_unknown_layer_class_points_to_custom_objects(tmp_path):
    class Scale(Dense):
        pass

    model = Sequential([Scale(3, input_dim=FEATURES)])
    path = str(tmp_path / "c.h5")
    model.save(path)
    with pytest.raises(ValueError) as error:
        load_model(path)
    assert "Scale" in str(error.value) and "custom_objects" in str(error.value)
    loaded = load_model(path, custom_objects={"Scale": Scale}, compile=False)
    assert type(loaded.layers[0]) is Scale
    assert_same_weights(loaded, model)


def test_unknown_optimizer_class_points_to_custom_objects(tmp_path):
    class Slow(optimizers.SGD):
        pass

    model = mlp(optimizer=Slow(lr=0.01))
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "o.h5")
    model.save(path)
    with pytest.raises(ValueError) as error:
        load_model(path)
    assert "Slow" in str(error.value) and "custom_objects" in str(error.value)
    loaded = load_model(path, custom_objects={"Slow": Slow})
    assert type(loaded.optimizer) is Slow and loaded.optimizer.iterations == model.optimizer.iterations


def test_float64_model_round_trip(tmp_path):
    model = Sequential([Dense(4, input_dim=FEATURES, dtype="float64"), Dense(2, dtype="float64")])
    path = str(tmp_path / "d.h5")
    model.save(path)
    loaded = load_model(path, compile=False)
    assert loaded.get_weights()[0].dtype == np.float64
    assert_same_weights(loaded, model)


def test_json_round_trip_matches_file_config(tmp_path):
    model = mlp()
    rebuilt = fastfit.models.model_from_json(model.to_json())
    assert [type(l) for l in rebuilt.layers] == [type(l) for l in model.layers]


def test_non_ascii_layer_names_round_trip(tmp_path):
    model = Sequential([Dense(3, input_dim=FEATURES, name="dénse_ü"), Dense(2, name="出力")])
    path = str(tmp_path / "u.h5")
    model.save(path)
    loaded = load_model(path, compile=False)
    assert [layer.name for layer in loaded.layers] == ["dénse_ü", "出力"]
    assert_same_weights(loaded, model)
    fresh = Sequential([Dense(3, input_dim=FEATURES, name="dénse_ü"), Dense(2, name="出力")])
    fresh.load_weights(path, by_name=True)
    assert_same_weights(fresh, model)
