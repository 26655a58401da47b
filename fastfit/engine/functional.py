"""Building a functional model from its config: the body of `Model.from_config`."""
from __future__ import annotations

import collections
import heapq
from typing import Any

from fastfit.layers import deserialize


def from_config(cls: type, config: Any, custom_objects: dict | None = None) -> Any:
    """Rebuild a functional model of class `cls` (`Model` or a subclass) from a Keras 2 config (layers with
    inbound nodes): `cls(inputs, outputs, name=...)`, as Keras 2's `Network.from_config`.

    Layers are built in config order, each as soon as its inbound layers exist (a heap of ready layers by
    position): time O(n log n) in the number of layers, whatever order the config lists them in.

    Raises:
        ValueError: a malformed config (names what is wrong), or layers that cannot be connected.
    """
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
    return cls(inputs, outputs[0] if len(outputs) == 1 else outputs, name=config.get("name"))


def _inbound_layer_names(entry):
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


def _endpoints(config, key):
    entries = config.get(key)
    if isinstance(entries, list) and entries and isinstance(entries[0], str):
        entries = [entries]  # a single [name, node, tensor]
    if not isinstance(entries, list) or not entries or not all(
            isinstance(e, list) and e and isinstance(e[0], str) for e in entries):
        raise ValueError(f"Model config: `{key}` must be a non-empty list of [layer_name, node_index, "
                         f"tensor_index], got {entries!r:.200}")
    return entries


def _endpoint(entry, outputs_of, key):
    if entry[0] not in outputs_of or not outputs_of[entry[0]]:
        raise ValueError(f"Model config: `{key}` names layer '{entry[0]}', which has no output in the model")
    return outputs_of[entry[0]][0]
