"""Layers: core (`Dense`, `Activation`, `Dropout`, `Flatten`, `Input`, `InputLayer`), `BatchNormalization`, the
advanced activations and the noise layers (docs/layers.md)."""
from __future__ import annotations

from typing import Any

from fastfit._types import Config
from fastfit.engine.base_layer import Layer
from fastfit.engine.input_layer import Input, InputLayer
from fastfit.layers.advanced_activations import ELU, LeakyReLU, PReLU, ReLU, Softmax, ThresholdedReLU
from fastfit.layers.core import Activation, Dense, Dropout, Flatten
from fastfit.layers.noise import ActivityRegularization, AlphaDropout, GaussianDropout, GaussianNoise
from fastfit.layers.normalization import BatchNormalization

_CLASSES = (InputLayer, Dense, Activation, Dropout, Flatten, BatchNormalization, LeakyReLU, PReLU, ELU,
            ThresholdedReLU, Softmax, ReLU, GaussianNoise, GaussianDropout, AlphaDropout, ActivityRegularization)

__all__ = ["Layer", "Input"] + [cls.__name__ for cls in _CLASSES]


def __getattr__(name: str) -> Any:
    """A layer Keras has and fastfit does not (Conv2D, Lambda, LSTM, ...) is an AttributeError naming both."""
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    raise AttributeError(f"fastfit.layers has no {name!r}: fastfit's compiled engines run only the layers "
                         f"{[n for n in __all__ if n != 'Layer']}; custom layers are not supported either "
                         "(see the 'Coming from Keras 2 / tf.keras' guide)")


def deserialize(config: Config, custom_objects: dict[str, Any] | None = None) -> Layer:
    """Build a layer from `{'class_name': ..., 'config': {...}}` (Keras 2 or 3 spelling).

    Raises:
        ValueError: unknown class (pass custom layers in `custom_objects`).
    """
    classes = {cls.__name__: cls for cls in _CLASSES}
    classes.update(custom_objects or {})
    if not isinstance(config, dict) or not isinstance(config.get("config", {}), (dict, type(None))):
        raise ValueError(f"A layer config must be {{'class_name': ..., 'config': {{...}}}}, got {config!r:.200}")
    name = config.get("class_name")
    if not isinstance(name, str) or name not in classes:
        raise ValueError(f"Unknown layer class {name!r}; fastfit knows {sorted(classes)}. "
                         "Pass custom layers with `custom_objects={'Name': cls}`.")
    inner = _clean_config(dict(config.get("config") or {}))
    return classes[name].from_config(inner)


def _clean_config(config: Config) -> Config:
    """Map Keras 3 config spellings onto Keras 2 ones."""
    if isinstance(config.get("dtype"), dict):  # Keras 3 dtype policy
        config["dtype"] = (config["dtype"].get("config") or {}).get("name", "float32")
    if "batch_shape" in config and "batch_input_shape" not in config:
        config["batch_input_shape"] = config.pop("batch_shape")
    for key, value in list(config.items()):
        if isinstance(value, dict) and "class_name" in value and key.endswith(("_initializer", "_regularizer",
                                                                               "_constraint")):
            config[key] = {"class_name": value.get("class_name"), "config": value.get("config") or {}}
    config.pop("input_shape", None) if "batch_input_shape" in config else None
    return config
