"""Keras 0.x/1 argument spellings that Keras 2's legacy converters accepted (keras 2.2.4
`keras/legacy/interfaces.py`, `engine/base_layer.py`, `engine/training.py`).

Each is accepted with a DeprecationWarning that names the modern spelling; a legacy and a modern spelling of
the same argument together raise a TypeError naming both.
"""
import warnings

import numpy as np
import pytest

from fastfit.layers import Activation, Dense, Dropout, Input, InputLayer
from fastfit.models import Model, Sequential

# legacy keyword -> (modern keyword, a legacy value fastfit accepts, how to read the converted value back)
DENSE_LEGACY = {
    "output_dim": ("units", 4, lambda layer: layer.units),
    "init": ("kernel_initializer", "zeros", lambda layer: layer.get_config()["kernel_initializer"]["class_name"]),
    "bias": ("use_bias", False, lambda layer: layer.use_bias),
    "W_regularizer": ("kernel_regularizer", None, None),
    "b_regularizer": ("bias_regularizer", None, None),
    "W_constraint": ("kernel_constraint", None, None),
    "b_constraint": ("bias_constraint", None, None),
}
MODERN_VALUES = {"units": 4, "kernel_initializer": "zeros", "use_bias": False, "kernel_regularizer": None,
                 "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None, "rate": 0.5,
                 "dtype": "float32", "epochs": 2, "inputs": None, "outputs": None}


def only_deprecations(record):
    """The DeprecationWarning messages; each must point at the calling line (here), so users see it."""
    found = [w for w in record if issubclass(w.category, DeprecationWarning)]
    assert all(w.filename == __file__ for w in found), [(w.filename, str(w.message)) for w in found]
    return [str(w.message) for w in found]


@pytest.mark.parametrize("legacy", sorted(DENSE_LEGACY))
def test_dense_keras1_keyword_is_converted_with_warning(legacy):
    modern, value, read_back = DENSE_LEGACY[legacy]
    kwargs = {legacy: value, "input_dim": 3}
    if legacy != "output_dim":
        kwargs["units"] = 4
    with pytest.warns(DeprecationWarning) as record:
        layer = Dense(**kwargs)
    messages = only_deprecations(record)
    assert any(modern in m and legacy in m for m in messages), messages
    if read_back is not None:
        expected = {"init": "Zeros"}.get(legacy, value)
        assert read_back(layer) == expected
    model = Sequential([layer])
    assert model.output_shape == (None, 4)


@pytest.mark.parametrize("legacy", sorted(DENSE_LEGACY))
def test_dense_legacy_and_modern_together_is_type_error(legacy):
    modern = DENSE_LEGACY[legacy][0]
    kwargs = {legacy: DENSE_LEGACY[legacy][1], modern: MODERN_VALUES[modern]}
    if modern != "units":
        kwargs["units"] = 4
    with pytest.raises(TypeError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        Dense(**kwargs)
    assert legacy in str(info.value) and modern in str(info.value)


def test_dense_units_positionally_and_output_dim_is_type_error():
    with pytest.raises(TypeError, match="output_dim.*units|units.*output_dim"):
        Dense(4, output_dim=4)


def test_dense_legacy_regularizer_becomes_kernel_regularizer_and_custom_ones_are_refused_clearly():
    with pytest.warns(DeprecationWarning):
        layer = Dense(2, W_regularizer="l2")
    assert layer.kernel_regularizer.get_config() == {"l1": 0.0, "l2": pytest.approx(0.01)}
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="kernel_regularizer"):
        Dense(2, W_regularizer=lambda w: 0.0)


def test_dense_keras0_positional_input_and_output_dims():
    with pytest.warns(DeprecationWarning) as record:
        layer = Dense(784, 10, init="uniform")
    messages = only_deprecations(record)
    assert any("input_dim=784" in m for m in messages), messages
    assert any("kernel_initializer" in m for m in messages), messages
    model = Sequential([layer])
    assert model.input_shape == (None, 784) and model.output_shape == (None, 10)
    kernel, bias = layer.get_weights()
    assert kernel.shape == (784, 10) and np.abs(kernel).max() <= 0.05 and kernel.std() > 0.01
    assert layer.get_config()["units"] == 10


def test_dense_keras0_positional_with_input_dim_keyword_is_type_error():
    with pytest.raises(TypeError, match="input_dim"):
        Dense(784, 10, input_dim=784)
    with pytest.raises(TypeError, match="positional"):
        Dense(784, 10, "uniform")


def test_dropout_p_is_rate():
    with pytest.warns(DeprecationWarning) as record:
        layer = Dropout(p=0.25)
    assert any("rate" in m and "`p`" in m for m in only_deprecations(record))
    assert layer.rate == 0.25 and layer.get_config()["rate"] == 0.25
    with pytest.raises(TypeError, match=r"`p`.*`rate`"):
        Dropout(0.5, p=0.5)
    with pytest.raises(TypeError, match=r"`p`.*`rate`"):
        Dropout(rate=0.5, p=0.5)


@pytest.mark.parametrize("make", [lambda **kw: Dense(2, input_dim=3, **kw),
                                  lambda **kw: Activation("relu", input_shape=(3,), **kw),
                                  lambda **kw: Dropout(0.5, input_shape=(3,), **kw)],
                         ids=["Dense", "Activation", "Dropout"])
def test_layer_input_dtype_is_dtype(make):
    with pytest.warns(DeprecationWarning) as record:
        layer = make(input_dtype="float64")
    assert any("input_dtype" in m and "dtype" in m for m in only_deprecations(record))
    assert layer.dtype == "float64"
    with pytest.raises(TypeError, match=r"input_dtype.*dtype"):
        make(input_dtype="float64", dtype="float64")


def test_input_input_dtype_is_dtype():
    with pytest.warns(DeprecationWarning, match="dtype"):
        tensor = Input(shape=(3,), input_dtype="float64")
    assert tensor.dtype == "float64"
    with pytest.warns(DeprecationWarning):
        assert InputLayer(input_shape=(3,), input_dtype="float64").dtype == "float64"
    with pytest.raises(TypeError, match=r"input_dtype.*dtype"):
        Input(shape=(3,), input_dtype="float64", dtype="float64")


def test_activation_has_no_other_legacy_arguments():
    # Keras 1's Activation(activation) is unchanged in Keras 2; unknown keywords stay errors.
    with pytest.raises(TypeError, match="foo"):
        Activation("relu", foo=1)


def test_model_input_output_keywords():
    inputs = Input(shape=(3,))
    outputs = Dense(2)(inputs)
    with pytest.warns(DeprecationWarning, match="inputs=.*outputs="):
        model = Model(input=inputs, output=outputs)
    assert model.input is inputs and model.output is outputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(TypeError, match=r"input.*inputs"):
            Model(inputs=inputs, input=inputs, output=outputs)
        with pytest.raises(TypeError, match=r"output.*outputs"):
            Model(input=inputs, output=outputs, outputs=outputs)


@pytest.fixture
def compiled_model():
    model = Sequential([Dense(2, input_dim=3, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[rng.integers(0, 2, 20)]
    return model, x, y


def test_fit_nb_epoch_is_epochs(core, compiled_model):
    model, x, y = compiled_model
    with pytest.warns(DeprecationWarning, match="`epochs`") as record:
        history = model.fit(x, y, nb_epoch=3, batch_size=5, verbose=0)
    assert any("nb_epoch" in m for m in only_deprecations(record))
    assert history.epoch == [0, 1, 2]
    assert history.params["epochs"] == 3


def test_fit_nb_epoch_and_epochs_together_is_type_error(compiled_model):
    model, x, y = compiled_model
    before = model.get_weights()
    with pytest.raises(TypeError, match=r"nb_epoch.*epochs"):
        model.fit(x, y, nb_epoch=3, epochs=2, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_fit_unknown_keyword_is_type_error(compiled_model):
    model, x, y = compiled_model
    # `show_accuracy` (Keras 0.x) is now accepted with a DeprecationWarning (tests/compat/test_keras_api.py)
    with pytest.raises(TypeError, match="show_accuracies"):
        model.fit(x, y, show_accuracies=True, verbose=0)


def test_legacy_layers_save_modern_configs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        dense = Dense(output_dim=3, init="uniform", bias=False, input_dim=2)
        dropout = Dropout(p=0.1)
    config = dense.get_config()
    assert config["units"] == 3 and config["use_bias"] is False
    assert config["kernel_initializer"]["class_name"] == "RandomUniform"
    assert not {"output_dim", "init", "bias"} & set(config)
    assert "p" not in dropout.get_config()


def test_reduce_lr_on_plateau_epsilon_is_min_delta():
    """Keras 2.0/2.1 `ReduceLROnPlateau(epsilon=...)` (spec §6): a warning naming `min_delta`."""
    from fastfit.callbacks import ReduceLROnPlateau
    with pytest.warns(Warning, match="min_delta"):
        callback = ReduceLROnPlateau(epsilon=0.01)
    assert callback.min_delta == 0.01 and not hasattr(callback, "epsilon")
