"""Layers: `Dense`, `Activation`, `Dropout`, `Flatten`, `Input`, `InputLayer`."""
from fastfit.engine.base_layer import Layer
from fastfit.engine.input_layer import Input, InputLayer
from fastfit.layers.core import Activation, Dense, Dropout, Flatten

__all__ = ["Layer", "Input", "InputLayer", "Dense", "Activation", "Dropout", "Flatten"]


def deserialize(config, custom_objects=None):
    """Build a layer from `{'class_name': ..., 'config': {...}}` (Keras 2 or 3 spelling).

    Raises:
        ValueError: unknown class (pass custom layers in `custom_objects`).
    """
    classes = {cls.__name__: cls for cls in (InputLayer, Dense, Activation, Dropout, Flatten)}
    classes.update(custom_objects or {})
    if not isinstance(config, dict) or not isinstance(config.get("config", {}), (dict, type(None))):
        raise ValueError(f"A layer config must be {{'class_name': ..., 'config': {{...}}}}, got {config!r:.200}")
    name = config.get("class_name")
    if not isinstance(name, str) or name not in classes:
        raise ValueError(f"Unknown layer class {name!r}; fastfit knows {sorted(classes)}. "
                         "Pass custom layers with `custom_objects={'Name': cls}`.")
    inner = _clean_config(dict(config.get("config") or {}))
    return classes[name].from_config(inner)


def _clean_config(config):
    """Map Keras 3 config spellings onto Keras 2 ones."""
    if isinstance(config.get("dtype"), dict):  # Keras 3 dtype policy
        config["dtype"] = (config["dtype"].get("config") or {}).get("name", "float32")
    if "batch_shape" in config and "batch_input_shape" not in config:
        config["batch_input_shape"] = config.pop("batch_shape")
    for key in ("kernel_initializer", "bias_initializer"):
        value = config.get(key)
        if isinstance(value, dict):
            value = {"class_name": value.get("class_name"), "config": value.get("config") or {}}
            config[key] = value
    config.pop("input_shape", None) if "batch_input_shape" in config else None
    return config
