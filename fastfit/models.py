"""Models: `Sequential`, functional `Model`, and loading them back from configs and files."""
import json

from fastfit.engine.sequential import Sequential
from fastfit.engine.training import Model


def _model_from_functional_config(config, custom_objects=None):
    """Rebuild a functional `Model` from a Keras 2 config (layers with inbound nodes)."""
    from fastfit.layers import deserialize
    layers, outputs_of = {}, {}
    pending = list(config.get("layers", []))
    while pending:
        progressed = False
        for entry in list(pending):
            inbound = entry.get("inbound_nodes") or []
            # Keras 2 writes [[[name, node, tensor, kwargs]]]; Keras 3 may drop one nesting level.
            sources = [node for group in inbound for node in (group if isinstance(group[0], list) else [group])]
            if any(src[0] not in outputs_of for src in sources):
                continue
            layer = deserialize(entry, custom_objects)
            layers[entry["name"]] = layer
            if entry.get("class_name") == "InputLayer":
                outputs_of[layer.name] = [layer.output]
            else:
                outputs_of[layer.name] = [layer(outputs_of[src[0]][0]) for src in sources]
            pending.remove(entry)
            progressed = True
        if not progressed:
            names = [entry.get("name") for entry in pending]
            raise ValueError(f"Model config: cannot connect layers {names}; their inbound layers are missing")
    inputs = [outputs_of[entry[0]][0] for entry in config["input_layers"]]
    outputs = [outputs_of[entry[0]][0] for entry in config["output_layers"]]
    single = len(config["output_layers"]) == 1
    return Model(inputs, outputs[0] if single else outputs, name=config.get("name"))


def model_from_config(config, custom_objects=None):
    """Build a model from `{'class_name': 'Sequential' | 'Model' | 'Functional', 'config': {...}}`.

    Raises:
        ValueError: unknown model or layer class (pass custom classes in `custom_objects`).
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError("model_from_config: expected a dict {'class_name': ..., 'config': ...}")
    class_name = config["class_name"]
    custom = custom_objects or {}
    if class_name == "Sequential" or (class_name in custom and issubclass(custom[class_name], Sequential)):
        cls = custom.get(class_name, Sequential)
        return cls.from_config(config["config"], custom_objects)
    if class_name in ("Model", "Functional"):
        return _model_from_functional_config(config["config"], custom_objects)
    raise ValueError(f"Unknown model class {class_name!r}; expected 'Sequential' or 'Model'. "
                     "Pass custom classes with `custom_objects`.")


def model_from_json(json_string, custom_objects=None):
    """Build a model (untrained, uncompiled) from `model.to_json()`."""
    try:
        config = json.loads(json_string)
    except (TypeError, ValueError) as error:
        raise ValueError(f"model_from_json: not valid JSON: {error}") from None
    return model_from_config(config, custom_objects)


def load_model(filepath, custom_objects=None, compile=True):
    """Load a model saved with `model.save` (or by Keras 2/3 in the HDF5 format)."""
    from fastfit import saving
    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile)


def save_model(model, filepath, overwrite=True, include_optimizer=True):
    model.save(filepath, overwrite=overwrite, include_optimizer=include_optimizer)


Model.from_config = classmethod(lambda cls, config, custom_objects=None:
                                _model_from_functional_config(config, custom_objects))

__all__ = ["Sequential", "Model", "load_model", "save_model", "model_from_json", "model_from_config"]
