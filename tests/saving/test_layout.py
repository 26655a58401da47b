"""The file layout: attribute types pinned with h5py (golden), chunked name lists, and the reader's tolerance."""
import json

import h5py
import numpy as np
import pytest

import fastfit
from fastfit.models import load_model
from fastfit.saving import attributes

from saving_helpers import FEATURES, assert_same_weights, data, mlp


def _trained(tmp_path, **kwargs):
    model = mlp(**kwargs)
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = str(tmp_path / "model.h5")
    model.save(path)
    return model, path


def test_golden_attribute_types(tmp_path):
    """tf.keras 2.x flavour: short strings and name lists fixed-length bytes, JSON variable-length."""
    model, path = _trained(tmp_path)
    with h5py.File(path, "r") as f:
        for key in ("keras_version", "backend", "fastfit_version"):
            assert isinstance(f.attrs[key], np.bytes_), key
            assert f.attrs.get_id(key).get_type().is_variable_str() is False
        assert f.attrs["keras_version"] == b"2.15.0" and f.attrs["backend"] == b"tensorflow"
        assert f.attrs["fastfit_version"] == fastfit.__version__.encode()
        for key in ("model_config", "training_config"):
            assert f.attrs.get_id(key).get_type().is_variable_str(), key
            json.loads(f.attrs[key])
        config = json.loads(f.attrs["model_config"])
        assert config["class_name"] == "Sequential"
        assert config["config"]["layers"][0]["class_name"] == "InputLayer"
        assert config["config"]["layers"][0]["config"]["batch_input_shape"] == [None, FEATURES]
        training = json.loads(f.attrs["training_config"])
        assert training["loss"] == "categorical_crossentropy" and training["loss_weights"] is None
        assert "learning_rate" in training["optimizer_config"]["config"]
        assert "decay" not in training["optimizer_config"]["config"]  # Keras 3 warns on it
        group = f["model_weights"]
        assert group.attrs["layer_names"].dtype.kind == "S"
        assert [n.decode() for n in group.attrs["layer_names"]] == [layer.name for layer in model.layers]
        assert group.attrs["keras_version"] == b"2.15.0" and group.attrs["backend"] == b"tensorflow"
        dense = model.layers[0].name
        assert group[dense].attrs["weight_names"].dtype.kind == "S"
        assert [n.decode() for n in group[dense].attrs["weight_names"]] == [f"{dense}/kernel:0", f"{dense}/bias:0"]
        assert group[f"{dense}/{dense}/kernel:0"].shape == (FEATURES, 8)
        assert group[f"{dense}/{dense}/kernel:0"].dtype == np.float32
        assert len(group[model.layers[1].name].attrs["weight_names"]) == 0  # Dropout: present, empty
        assert len(group["top_level_model_weights"].attrs["weight_names"]) == 0
        optimizer = f["optimizer_weights"]
        names = [n.decode() for n in optimizer.attrs["weight_names"]]
        assert names[0] == "Adam/iter:0" and optimizer["Adam/iter:0"][()] == model.optimizer.iterations
        assert names[1] == f"Adam/{dense}/kernel/m:0" and len(names) == 1 + 2 * 4


def test_save_weights_layout_is_at_the_root(tmp_path):
    model = mlp()
    path = str(tmp_path / "w.h5")
    model.save_weights(path)
    with h5py.File(path, "r") as f:
        assert "model_config" not in f.attrs and "model_weights" not in f
        assert [n.decode() for n in f.attrs["layer_names"]] == [layer.name for layer in model.layers]
        assert isinstance(f.attrs["keras_version"], np.bytes_)


def test_name_lists_are_chunked_above_the_header_limit(tmp_path):
    names = [f"layer_with_a_long_name_{i:05d}" for i in range(4000)]  # 4000 * 28 bytes > 64512
    with h5py.File(tmp_path / "n.h5", "w") as f:
        attributes.write_name_list(f.attrs, "layer_names", names)
        assert "layer_names" not in f.attrs and "layer_names0" in f.attrs and "layer_names1" in f.attrs
        assert all(f.attrs[k].nbytes <= attributes.HEADER_LIMIT for k in f.attrs)
        assert attributes.read_name_list(f.attrs, "layer_names") == names


@pytest.mark.parametrize("value", [
    np.array([b"a", b"bc"]), np.array(["a", "bc"], dtype=h5py.string_dtype()), [b"a", b"bc"], ["a", "bc"],
])
def test_reader_accepts_bytes_or_str_lists(tmp_path, value):
    with h5py.File(tmp_path / "n.h5", "w") as f:
        f.attrs["names"] = value
        assert attributes.read_name_list(f.attrs, "names") == ["a", "bc"]


def test_reader_accepts_empty_lists_of_any_dtype(tmp_path):
    with h5py.File(tmp_path / "n.h5", "w") as f:
        f.attrs["float_empty"] = np.asarray([])  # what Keras 3 writes for weightless layers
        f.attrs["bytes_empty"] = np.array([], dtype="S1")
        assert attributes.read_name_list(f.attrs, "float_empty") == []
        assert attributes.read_name_list(f.attrs, "bytes_empty") == []
        assert attributes.read_name_list(f.attrs, "absent") == []


def _keras3_style_file(path, model):
    """A file laid out like Keras 3's legacy .h5 writer: str attributes, policy dicts, batch_shape, new names."""
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
    init = {"module": "keras.initializers", "class_name": "GlorotUniform",
            "config": {"seed": None, "input_axes": None, "output_axes": None}, "registered_name": None}
    layers = [{"class_name": "InputLayer", "config": {"batch_shape": [None, FEATURES], "dtype": "float32",
                                                       "sparse": False, "ragged": False, "name": "input_layer",
                                                       "optional": False}}]
    for layer in model.layers:
        config = {"name": layer.name, "trainable": True, "dtype": policy}
        if isinstance(layer, fastfit.layers.Dense):
            config.update(units=layer.units, activation=layer.activation, use_bias=True, kernel_initializer=init,
                          bias_initializer={"module": "keras.initializers", "class_name": "Zeros", "config": {},
                                            "registered_name": None},
                          kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                          bias_constraint=None, quantization_config=None)
        else:
            config["activation"] = layer.activation
        layers.append({"class_name": type(layer).__name__, "config": config})
    config = {"class_name": "Sequential", "config": {"name": "sequential", "trainable": True, "dtype": policy,
                                                      "layers": layers, "build_input_shape": [None, FEATURES]}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "3.15.1"
        f.attrs["backend"] = "jax"
        f.attrs["written_by_a_future_version"] = "extra attributes and groups are ignored"
        f.create_group("a_future_group")
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["training_config"] = json.dumps({
            "loss": {"module": "keras.losses", "class_name": "CategoricalCrossentropy", "config": {},
                     "registered_name": None},
            "loss_weights": None, "metrics": [["accuracy"]], "weighted_metrics": None, "jit_compile": True,
            "optimizer_config": {"class_name": "SGD", "config": {"name": "SGD", "learning_rate": 0.05,
                                                                 "weight_decay": None, "clipnorm": None,
                                                                 "use_ema": False, "momentum": 0.0,
                                                                 "nesterov": False}}})
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = np.array([l.name for l in model.layers], dtype=h5py.string_dtype())
        for layer in model.layers:
            sub = group.create_group(layer.name)
            names = [f"sequential/{layer.name}/{w}" for w in ("kernel", "bias")][:len(layer.weights)]
            sub.attrs["weight_names"] = (np.array(names, dtype=h5py.string_dtype()) if names else np.asarray([]))
            for name, value in zip(names, layer.weights):
                sub.create_dataset(name, data=value)
        group.create_group("top_level_model_weights").attrs["weight_names"] = np.asarray([])


def test_keras3_style_file_loads_and_predicts_the_same(tmp_path):
    from fastfit.layers import Activation, Dense
    source = fastfit.models.Sequential([Dense(5, input_dim=FEATURES, activation="tanh"), Dense(3),
                                        Activation("softmax")])
    path = str(tmp_path / "k3.h5")
    _keras3_style_file(path, source)
    loaded = load_model(path)
    x, y = data()
    np.testing.assert_array_equal(loaded.predict(x), source.predict(x))
    assert type(loaded.optimizer).__name__ == "SGD" and loaded.optimizer.lr == pytest.approx(0.05)
    # The serialised CategoricalCrossentropy comes back as that loss object (from_logits=False).
    assert type(loaded.loss) is fastfit.losses.CategoricalCrossentropy and not loaded.loss.from_logits
    assert loaded._canonical_loss == "categorical_crossentropy" and loaded.metrics_names == ["loss", "accuracy"]
    loaded.fit(x, y, epochs=1, verbose=0)
    fresh = fastfit.models.Sequential([Dense(5, input_dim=FEATURES, activation="tanh"), Dense(3),
                                       Activation("softmax")])
    fresh.load_weights(path)
    assert_same_weights(fresh, source)


def test_model_config_above_64k_round_trips(tmp_path):
    from fastfit.layers import Dense
    model = fastfit.models.Sequential([Dense(2, input_dim=3, name="d" * 40 + str(i)) if i == 0 else
                                       Dense(2, name="d" * 40 + str(i)) for i in range(400)])
    path = str(tmp_path / "deep.h5")
    model.save(path)
    with h5py.File(path, "r") as f:
        assert len(f.attrs["model_config"]) > 65536
    assert_same_weights(load_model(path, compile=False), model)
