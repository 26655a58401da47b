"""The Keras 2 functional API: Input, layers called on tensors, Model(inputs, outputs), and its errors."""
import numpy as np
import pytest

import fastfit
from fastfit.layers import Activation, Dense, Dropout, Flatten, Input, InputLayer
from fastfit.models import Model, Sequential


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 48)
    x = (rng.normal(0, 1, (3, 6))[labels] + rng.normal(0, 0.3, (48, 6))).astype("float32")
    return x, fastfit.utils.to_categorical(labels, 3)


def small_functional(name_prefix=""):
    inputs = Input(shape=(6,), name=name_prefix + "pixels")
    hidden = Dense(5, activation="relu", name=name_prefix + "hidden")(inputs)
    outputs = Dense(3, activation="softmax", name=name_prefix + "probs")(hidden)
    return inputs, hidden, outputs


def test_input_returns_symbolic_tensor_with_batch_axis():
    tensor = Input(shape=(6,))
    assert tensor.shape == (None, 6)
    assert isinstance(tensor.layer, InputLayer)
    assert Input(batch_shape=(None, 2, 3)).shape == (None, 2, 3)


def test_layer_call_builds_weights_and_links_tensors():
    inputs = Input(shape=(6,))
    dense = Dense(4)
    out = dense(inputs)
    assert out.shape == (None, 4)
    assert [w.shape for w in dense.get_weights()] == [(6, 4), (4,)]
    assert dense.input is inputs and dense.output is out
    assert dense.input_shape == (None, 6) and dense.output_shape == (None, 4)


def test_model_single_output_structure():
    inputs, hidden, outputs = small_functional()
    model = Model(inputs, outputs)
    assert model.input is inputs and model.output is outputs
    assert model.inputs == [inputs] and model.outputs == [outputs]
    # Keras 2: a functional model's `layers` starts with its InputLayer
    assert [l.name for l in model.layers] == ["pixels", "hidden", "probs"]
    assert model.input_shape == (None, 6) and model.output_shape == (None, 3)


def test_model_keyword_arguments():
    inputs, _, outputs = small_functional()
    model = Model(inputs=inputs, outputs=outputs, name="classifier")
    assert model.name == "classifier" and model.output is outputs


def test_model_list_outputs_and_predict_returns_list(data):
    inputs, hidden, outputs = small_functional()
    model = Model(inputs, [hidden, outputs])
    assert model.output == [hidden, outputs]
    assert model.output_shape == [(None, 5), (None, 3)]
    predictions = model.predict(data[0][:7])
    assert isinstance(predictions, list) and len(predictions) == 2
    assert predictions[0].shape == (7, 5) and predictions[1].shape == (7, 3)
    np.testing.assert_allclose(predictions[1], Model(inputs, outputs).predict(data[0][:7]), rtol=1e-6)


def test_one_item_output_list_still_predicts_a_list(data):
    inputs, _, outputs = small_functional()
    predictions = Model(inputs, [outputs]).predict(data[0][:4])
    assert isinstance(predictions, list) and predictions[0].shape == (4, 3)


def test_sequential_exposes_layer_inputs_and_outputs():
    model = Sequential()
    model.add(Dense(5, input_dim=6))
    model.add(Activation("relu"))
    model.add(Dense(3))
    first, act, last = model.layers  # no InputLayer in a Sequential's `layers`
    assert model.input is first.input and model.output is last.output
    assert first.output is act.input and act.output is last.input
    assert [l.output.shape for l in model.layers] == [(None, 5), (None, 5), (None, 3)]


def test_probe_model_shares_weights_with_trained_sequential(data):
    """The DLwP ActivationLogger pattern: Model(model.input, [layer.output for layer in model.layers])."""
    x, y = data
    model = Sequential([Dense(5, activation="relu", input_dim=6), Dropout(0.3), Dense(3, activation="softmax")])
    probe = Model(model.input, [layer.output for layer in model.layers])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    hidden, dropped, probs = probe.predict(x)
    np.testing.assert_allclose(probs, model.predict(x), rtol=1e-6)
    np.testing.assert_array_equal(hidden, dropped)  # Dropout is the identity outside fit
    kernel, bias = model.layers[0].get_weights()
    np.testing.assert_allclose(hidden, np.maximum(x @ kernel + bias, 0), rtol=1e-5, atol=1e-6)


def test_get_layer_by_name_and_index():
    inputs, _, outputs = small_functional()
    model = Model(inputs, outputs)
    assert model.get_layer(name="hidden") is model.layers[1]
    assert model.get_layer(index=2).name == "probs"
    assert model.get_layer(index=-1).name == "probs"
    with pytest.raises(ValueError, match="'missing'"):
        model.get_layer(name="missing")
    with pytest.raises(ValueError, match="index"):
        model.get_layer(index=3)
    with pytest.raises(ValueError):
        model.get_layer()


def test_automatic_names_are_unique_per_class():
    layers = [Dense(2), Dense(2), Activation("relu"), Dropout(0.1), Dense(1)]
    assert [l.name for l in layers] == ["dense_1", "dense_2", "activation_1", "dropout_1", "dense_3"]
    model_names = {Sequential().name, Sequential().name}
    assert len(model_names) == 2
    fastfit.backend.clear_session()
    assert Dense(2).name == "dense_1"


def test_fit_and_evaluate_functional_model(core, data):
    x, y = data
    inputs, _, outputs = small_functional()
    model = Model(inputs, outputs)
    model.compile(optimizer=fastfit.optimizers.Adam(lr=0.02), loss="categorical_crossentropy", metrics=["acc"],
                  engine=core)
    history = model.fit(x, y, epochs=15, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, acc = model.evaluate(x, y, batch_size=16, verbose=0)
    assert isinstance(loss, float) and 0.0 <= acc <= 1.0 and acc > 0.8
    assert model.metrics_names == ["loss", "acc"]


def test_functional_and_sequential_give_the_same_training(core, data):
    x, y = data
    seq = Sequential([Dense(5, activation="relu", input_dim=6), Dense(3, activation="softmax")])
    inputs = Input(shape=(6,))
    func = Model(inputs, Dense(3, activation="softmax")(Dense(5, activation="relu")(inputs)))
    func.set_weights(seq.get_weights())
    for model in (seq, func):
        model.compile(optimizer="sgd", loss="categorical_crossentropy", engine=core)
        model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(seq.get_weights(), func.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_multi_output_model_cannot_be_compiled():
    inputs, hidden, outputs = small_functional()
    with pytest.raises(ValueError, match="outputs"):
        Model(inputs, [hidden, outputs]).compile(optimizer="sgd", loss="mse")


def test_flatten_in_functional_graph(data):
    inputs = Input(shape=(2, 3))
    model = Model(inputs, Dense(2)(Flatten()(inputs)))
    assert model.predict(data[0].reshape(-1, 2, 3)).shape == (48, 2)


# -- bad input ---------------------------------------------------------------------------------------------

def test_disconnected_graph_names_the_layer():
    first = Input(shape=(6,), name="first_input")
    other = Input(shape=(6,), name="other_input")
    out = Dense(2, name="orphan_head")(other)
    with pytest.raises(ValueError, match="orphan_head") as info:
        Model(first, out)
    assert "first_input" in str(info.value)


def test_input_must_come_from_input():
    inputs = Input(shape=(6,))
    hidden = Dense(4, name="middle")(inputs)
    with pytest.raises(ValueError, match="middle"):
        Model(hidden, Dense(2)(hidden))


def test_wrong_shape_call_names_the_layer():
    dense = Dense(3, name="fixed_width")
    dense(Input(shape=(6,)))
    with pytest.raises(ValueError, match="fixed_width"):
        dense(Input(shape=(4,)))
    with pytest.raises(ValueError, match="needs_flat"):
        Dense(3, name="needs_flat")(Input(shape=(2, 3)))


def test_calling_a_layer_on_data_is_a_clear_type_error():
    with pytest.raises(TypeError, match="predict"):
        Dense(2, name="d")(np.zeros((3, 4)))


def test_duplicate_layer_names_name_the_layer():
    inputs = Input(shape=(6,))
    out = Dense(2, name="twin")(Dense(4, name="twin")(inputs))
    with pytest.raises(ValueError, match="twin"):
        Model(inputs, out)
    model = Sequential([Dense(2, input_dim=6, name="twin_seq")])
    with pytest.raises(ValueError, match="twin_seq"):
        model.add(Dense(2, name="twin_seq"))


def test_model_arguments_must_be_tensors():
    inputs = Input(shape=(6,))
    with pytest.raises(TypeError, match="outputs"):
        Model(inputs, "dense_1")
    with pytest.raises(TypeError):
        Model(inputs)


def test_unconnected_layer_has_no_output_yet():
    with pytest.raises(AttributeError, match="'lonely'"):
        Dense(2, name="lonely").output


def test_layer_called_twice_has_ambiguous_output():
    shared = Dense(2, name="shared")
    shared(Input(shape=(3,)))
    shared(Input(shape=(3,)))
    with pytest.raises(AttributeError, match="'shared'.*inbound nodes"):
        shared.output
