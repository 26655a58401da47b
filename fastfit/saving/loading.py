"""Loading models: `load_model` (a model file), `model_from_config` and `model_from_json` (an architecture).

This is the one module of `fastfit.saving` that imports the model classes (to build the class a config
names); `fastfit.models` re-exports its functions, and nothing below `fastfit.models` imports it.
"""
from __future__ import annotations

import json
from typing import Any

from fastfit._types import Config, PathLike
from fastfit.engine.sequential import Sequential
from fastfit.engine.training import Model


def load_model(filepath: PathLike, custom_objects: dict[str, Any] | None = None, compile: bool = True) -> Model:
    """Load a model written by `model.save` (fastfit, Keras 2, tf.keras or Keras 3's `.h5` writer).

    Arguments:
        filepath: str or path-like.
        custom_objects: dict mapping class names to custom layer / optimizer classes, and the names of
            custom metrics to their function or metric object.
        compile: compile the model from the saved training configuration and restore the optimizer state.

    Returns:
        The model, compiled if `compile` and the file has a training configuration.

    Raises:
        FileNotFoundError: no such file. ValueError: not an HDF5 model file, corrupted or truncated file,
            unknown layer or optimizer class (names it; pass it in `custom_objects`), weights that do not fit.
    """
    from fastfit.saving import model_file  # h5py: `import fastfit` (which imports this module) must not load it
    return model_file.read_model(filepath, model_from_config, custom_objects=custom_objects, compile=compile)


def model_from_config(config: Config, custom_objects: dict[str, Any] | None = None) -> Model:
    """Build a model from `{'class_name': 'Sequential' | 'Model' | 'Functional', 'config': {...}}`.

    Raises:
        ValueError: unknown model or layer class (pass custom classes in `custom_objects`).
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError("model_from_config: expected a dict {'class_name': ..., 'config': ...}")
    class_name = config["class_name"]
    if not isinstance(class_name, str):
        raise ValueError(f"model_from_config: `class_name` must be a string, got {class_name!r:.100}")
    custom = custom_objects or {}
    if class_name == "Sequential" or (class_name in custom and issubclass(custom[class_name], Sequential)):
        cls = custom.get(class_name, Sequential)
        return cls.from_config(config["config"], custom_objects)
    if class_name in ("Model", "Functional"):
        return Model.from_config(config["config"], custom_objects)
    raise ValueError(f"Unknown model class {class_name!r}; expected 'Sequential' or 'Model'. "
                     "Pass custom classes with `custom_objects`.")


def model_from_json(json_string: str, custom_objects: dict[str, Any] | None = None) -> Model:
    """Build a model (untrained, uncompiled) from `model.to_json()`."""
    try:
        config = json.loads(json_string)
    except (TypeError, ValueError) as error:
        raise ValueError(f"model_from_json: not valid JSON: {error}") from None
    return model_from_config(config, custom_objects)
