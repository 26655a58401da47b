"""Models: `Sequential`, functional `Model`, and loading them back from configs and files."""
from __future__ import annotations

import collections
import heapq
import json
from typing import Any

from fastfit.engine.sequential import Sequential
from fastfit._types import Config, PathLike
from fastfit.engine.base_layer import SymbolicTensor
from fastfit.engine.training import Model


def _model_from_functional_config(config: Config, custom_objects: dict[str, Any] | None = None) -> Model:
    """Rebuild a functional `Model` from a Keras 2 config (layers with inbound nodes).

    Layers are built in config order, each as soon as its inbound layers exist (a heap of ready layers by
    position): time O(n log n) in the number of layers, whatever order the config lists them in.

    Raises:
        ValueError: a malformed config (names what is wrong), or layers that cannot be connected.
    """
    from fastfit.layers import deserialize
    if not isinstance(config, dict) or not isinstance(config.get("layers", []), list):
        raise ValueError("Model config: expected a dict with a list of `layers`")
    entries = config.get("layers", [])
    names, sources = [], []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ValueError(f"Model config: layer entry {index} must be a dict with a `name`, got {entry!r:.200}")
        names.append(entry["name"])
        sources.append(_inbound_layer_names(entry))
    if len(set(names)) != len(names):
        duplicate = next(name for name, count in collections.Counter(names).items() if count > 1)
        raise ValueError(f"Model config: layer name '{duplicate}' is used by more than one layer")
    waiting_on = [len(set(srcs)) for srcs in sources]
    dependents: dict[str, list[int]] = {}
    for index, srcs in enumerate(sources):
        for src in set(srcs):
            dependents.setdefault(src, []).append(index)
    ready = [index for index, count in enumerate(waiting_on) if count == 0]
    heapq.heapify(ready)
    layers, outputs_of = {}, {}
    while ready:
        index = heapq.heappop(ready)
        entry = entries[index]
        layer = deserialize(entry, custom_objects)
        layers[entry["name"]] = layer
        if entry.get("class_name") == "InputLayer":
            outputs_of[entry["name"]] = [layer.output]
        else:
            outputs_of[entry["name"]] = [layer(outputs_of[src][0]) for src in sources[index]]
        for dependent in dependents.get(entry["name"], ()):
            waiting_on[dependent] -= 1
            if waiting_on[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(outputs_of) != len(entries):
        missing = [name for name in names if name not in outputs_of]
        raise ValueError(f"Model config: cannot connect layers {missing[:20]}; their inbound layers are missing")
    inputs = [_endpoint(entry, outputs_of, "input_layers") for entry in _endpoints(config, "input_layers")]
    outputs = [_endpoint(entry, outputs_of, "output_layers") for entry in _endpoints(config, "output_layers")]
    return Model(inputs, outputs[0] if len(outputs) == 1 else outputs, name=config.get("name"))


def _inbound_layer_names(entry: Config) -> list[str]:
    """The names of the layers feeding `entry`: Keras 2 writes [[[name, node, tensor, kwargs]]], Keras 3 may
    drop one nesting level."""
    inbound = entry.get("inbound_nodes") or []
    if not isinstance(inbound, list):
        raise ValueError(f"Model config: layer '{entry['name']}' has malformed `inbound_nodes` {inbound!r:.200}")
    found = []
    for group in inbound:
        nodes = group if isinstance(group, list) and group and isinstance(group[0], list) else [group]
        for node in nodes:
            if not (isinstance(node, list) and node and isinstance(node[0], str)):
                raise ValueError(f"Model config: layer '{entry['name']}' has a malformed inbound node "
                                 f"{node!r:.200}; expected [layer_name, node_index, tensor_index, kwargs]")
            found.append(node[0])
    return found


def _endpoints(config: Config, key: str) -> list[list[Any]]:
    entries = config.get(key)
    if isinstance(entries, list) and entries and isinstance(entries[0], str):
        entries = [entries]  # a single [name, node, tensor]
    if not isinstance(entries, list) or not entries or not all(
            isinstance(e, list) and e and isinstance(e[0], str) for e in entries):
        raise ValueError(f"Model config: `{key}` must be a non-empty list of [layer_name, node_index, "
                         f"tensor_index], got {entries!r:.200}")
    return entries


def _endpoint(entry: list[Any], outputs_of: dict[str, list[SymbolicTensor]], key: str) -> SymbolicTensor:
    if entry[0] not in outputs_of or not outputs_of[entry[0]]:
        raise ValueError(f"Model config: `{key}` names layer '{entry[0]}', which has no output in the model")
    return outputs_of[entry[0]][0]


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
        return _model_from_functional_config(config["config"], custom_objects)
    raise ValueError(f"Unknown model class {class_name!r}; expected 'Sequential' or 'Model'. "
                     "Pass custom classes with `custom_objects`.")


def model_from_json(json_string: str, custom_objects: dict[str, Any] | None = None) -> Model:
    """Build a model (untrained, uncompiled) from `model.to_json()`."""
    try:
        config = json.loads(json_string)
    except (TypeError, ValueError) as error:
        raise ValueError(f"model_from_json: not valid JSON: {error}") from None
    return model_from_config(config, custom_objects)


def load_model(filepath: PathLike, custom_objects: dict[str, Any] | None = None, compile: bool = True) -> Model:
    """Load a model saved with `model.save` (or by Keras 2/3 in the HDF5 format)."""
    from fastfit import saving
    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile)


def save_model(model: Model, filepath: PathLike, overwrite: bool = True, include_optimizer: bool = True) -> None:
    model.save(filepath, overwrite=overwrite, include_optimizer=include_optimizer)


def _functional_from_config(cls: type[Model], config: Config, custom_objects: dict[str, Any] | None = None) -> Model:
    return _model_from_functional_config(config, custom_objects)


Model.from_config = classmethod(_functional_from_config)

__all__ = ["Sequential", "Model", "load_model", "save_model", "model_from_json", "model_from_config"]
