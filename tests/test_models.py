"""Sequential and functional models: structure, names, weights, summary, configs."""
import numpy as np
import pytest

from fastfit.layers import Activation, Dense, Dropout, Flatten, Input
from fastfit.models import Model, Sequential, model_from_json


def test_sequential_structure_and_shapes():
    model = Sequential()
    model.add(Dense(8, input_dim=4, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(3))
    model.add(Activation("softmax"))
    assert [type(l).__name__ for l in model.layers] == ["Dense", "Dropout", "Dense", "Activation"]
    assert model.input_shape == (None, 4)
    assert model.output_shape == (None, 3)
    assert [w.shape for w in model.get_weights()] == [(4, 8), (8,), (8, 3), (3,)]
    assert model.count_params() == 4 * 8 + 8 + 8 * 3 + 3
    assert model.layers[0].output is model.layers[1].input


def test_automatic_layer_names_are_unique_and_keras_style():
    a, b = Dense(2, input_dim=3), Dense(2)
    assert a.name == "dense_1" and b.name == "dense_2"


def test_duplicate_layer_name_is_rejected():
    model = Sequential([Dense(2, input_dim=3, name="same")])
    with pytest.raises(ValueError, match="same"):
        model.add(Dense(2, name="same"))


def test_add_rejects_incompatible_layer_and_leaves_model_unchanged():
    model = Sequential([Flatten(input_shape=(2, 3)), Dense(4)])
    with pytest.raises(TypeError, match="Layer instance"):
        model.add("dense")
    assert len(model.layers) == 2
    with pytest.raises(ValueError, match="Flatten"):
        Sequential([Dense(2, input_shape=(2, 3))])


def test_pop_removes_last_layer():
    model = Sequential([Dense(4, input_dim=3), Dense(2)])
    model.pop()
    assert model.output_shape == (None, 4)
    with pytest.raises(TypeError):
        Sequential().pop()


def test_get_weights_returns_copies_and_set_weights_checks_shapes():
    model = Sequential([Dense(2, input_dim=3)])
    weights = model.get_weights()
    weights[0][...] = 7
    assert not np.any(model.get_weights()[0] == 7)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"dense_\d+.*\(3, 2\)"):
        model.set_weights([np.zeros((4, 2)), np.zeros(2)])
    np.testing.assert_array_equal(model.get_weights()[0], before[0])
    model.set_weights([np.ones((3, 2)), np.ones(2)])
    assert np.all(model.get_weights()[0] == 1)


def test_functional_model_multi_output_predict_returns_list():
    inputs = Input(shape=(4,))
    hidden = Dense(5, activation="relu")(inputs)
    out = Dense(2, activation="softmax")(hidden)
    model = Model(inputs, [hidden, out])
    x = np.random.default_rng(0).normal(size=(7, 4)).astype("float32")
    h, o = model.predict(x)
    assert h.shape == (7, 5) and o.shape == (7, 2)
    np.testing.assert_allclose(o.sum(axis=1), 1, rtol=1e-5)
    single = Model(inputs, out)
    np.testing.assert_allclose(single.predict(x), o, rtol=1e-6)


def test_functional_graph_disconnected_names_layer():
    a, b = Input(shape=(3,), name="in_a"), Input(shape=(3,), name="in_b")
    out = Dense(2, name="head")(b)
    with pytest.raises(ValueError, match="head"):
        Model(a, out)


def test_layer_called_on_wrong_shape_names_layer():
    dense = Dense(2, name="d")
    dense(Input(shape=(3,)))
    with pytest.raises(ValueError, match="'d'"):
        dense(Input(shape=(5,)))


def test_get_layer_by_name_and_index():
    model = Sequential([Dense(2, input_dim=3, name="first"), Dense(1, name="second")])
    assert model.get_layer("second") is model.layers[1]
    assert model.get_layer(index=0).name == "first"
    with pytest.raises(ValueError, match="nope"):
        model.get_layer("nope")


def test_summary_matches_keras_layout(capsys):
    model = Sequential([Dense(8, input_dim=4, name="dense_a"), Dense(2, name="dense_b")], name="seq")
    model.summary()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'Model: "seq"'
    assert out[2].startswith("Layer (type)") and "Output Shape" in out[2] and out[2].endswith("Param #")
    assert any(line.startswith("dense_a (Dense)") and "(None, 8)" in line and line.endswith("40") for line in out)
    assert "Total params: 58" in out and "Trainable params: 58" in out and "Non-trainable params: 0" in out


def test_json_round_trip_keeps_architecture():
    model = Sequential([Dense(8, input_dim=4, activation="tanh"), Dropout(0.25), Dense(3, activation="softmax")])
    clone = model_from_json(model.to_json())
    assert [l.get_config() for l in clone.layers] == [l.get_config() for l in model.layers]
    inputs = Input(shape=(4,))
    functional = Model(inputs, Dense(2)(Dense(3)(inputs)))
    clone = model_from_json(functional.to_json())
    assert [type(l).__name__ for l in clone.layers] == ["InputLayer", "Dense", "Dense"]
