"""Layer weights and optimizer state inside an HDF5 group, in the Keras 2 layout.

Layout written (tf.keras 2.x flavour): the group has `layer_names`, `backend`, `keras_version`; one subgroup
per layer (weightless ones too) with `weight_names` (`<layer>/kernel:0`, `<layer>/bias:0`) and one dataset per
name (the "/" makes a subgroup); a `top_level_model_weights` subgroup with no weights.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fastfit.saving import attributes

if TYPE_CHECKING:
    from fastfit.engine.base_layer import Layer
    from fastfit.engine.network import Network

KERAS_VERSION = "2.15.0"   # the Keras 2 version whose layout fastfit writes (readers check it is present)
BACKEND = "tensorflow"      # only "theano" changes how readers treat kernels


# The layer attributes that hold weights, by their Keras 2 names.
_NAMED = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance", "alpha")


def weight_names(layer: Layer) -> list[str]:
    """Keras 2 names of `layer.weights`: `<layer>/kernel:0`, `<layer>/gamma:0`, ... else `<layer>/weight_<i>:0`."""
    names = []
    for index, weight in enumerate(layer.weights):
        short = next((attr for attr in _NAMED if weight is getattr(layer, attr, None)), f"weight_{index}")
        names.append(f"{layer.name}/{short}:0")
    return names


def write_layers(group: Any, layers: Sequence[Layer]) -> None:
    """Write every layer's weights into `group` (model_weights, or the root for save_weights)."""
    attributes.write_name_list(group.attrs, "layer_names", [layer.name for layer in layers])
    attributes.write_short_text(group.attrs, "backend", BACKEND)
    attributes.write_short_text(group.attrs, "keras_version", KERAS_VERSION)
    for layer in layers:
        sub = group.create_group(layer.name)
        names = weight_names(layer)
        attributes.write_name_list(sub.attrs, "weight_names", names)
        for name, value in zip(names, layer.weights):
            sub.create_dataset(name, data=value)
    top = group.create_group("top_level_model_weights")
    attributes.write_name_list(top.attrs, "weight_names", [])


def read_layers(group: dict[str, Any] | None, where: str) -> list[tuple[str, list[Any]]]:
    """The saved layers in file order: a list of (layer name, [`isolation.Weight`]), from a group of
    `isolation.Contents.groups`.

    Only names, shapes and dtypes: `assign` reads the arrays after checking them against the model, so a file
    that declares huge arrays cannot exhaust memory.

    Raises:
        ValueError: no `layer_names` (not a weights group).
    """
    if group is None or (not group["layers"] and not group["listed"]):
        raise ValueError(f"{where}: no weights found (the file has no 'layer_names' attribute; it was not written "
                         "by save_weights or model.save)")
    return group["layers"]


def assign(model: Network, saved: list[tuple[str, list[Any]]], read: Callable[[list[Any]], list[np.ndarray]],
           by_name: bool = False, skip_mismatch: bool = False, where: str = "load_weights") -> None:
    """Copy saved layer weights into `model`; check everything first so a failure changes nothing.

    Arguments:
        saved: from `read_layers`.
        read: reads a list of `isolation.Weight` (`Contents.read`); called once, after every check.
        by_name: match layers by name (layers absent from the file keep their weights) instead of by order
            among the layers that have weights.
        skip_mismatch: with `by_name`, skip layers whose weight count or shapes differ (with a warning).

    Raises:
        ValueError: different numbers of layers with weights (by order), or a weight count or shape that
            does not match (names the layer and both shapes).
    """
    targets = [layer for layer in model.layers if layer.weights]
    pairs = []
    if by_name:
        by = dict(saved)
        pairs = [(layer, name, by[name]) for layer in targets for name in [layer.name] if name in by]
    else:
        saved = [(name, arrays) for name, arrays in saved if arrays]
        if len(saved) != len(targets):
            raise ValueError(f"{where}: the file holds weights for {len(saved)} layers "
                             f"({[n for n, _ in saved]}) but model '{model.name}' has {len(targets)} layers with "
                             f"weights ({[l.name for l in targets]})")
        pairs = [(layer, name, arrays) for layer, (name, arrays) in zip(targets, saved)]
    checked = []
    for layer, name, arrays in pairs:
        problem = _mismatch(layer, name, arrays)
        if problem is None:
            checked.append((layer, arrays))
        elif by_name and skip_mismatch:
            import warnings
            warnings.warn(f"{where}: skipping {problem}", UserWarning, stacklevel=3)
        else:
            raise ValueError(f"{where}: {problem}")
    values = iter(read([weight for _layer, arrays in checked for weight in arrays]))
    converted = [(layer, [np.asarray(next(values), dtype=w.dtype) for w in layer.weights]) for layer, _ in checked]
    for layer, arrays in converted:
        layer.set_weights(arrays)


def _mismatch(layer, saved_name, arrays):
    """A message describing why `arrays` do not fit `layer`, or None."""
    label = f"layer '{layer.name}'" + (f" (saved as '{saved_name}')" if saved_name != layer.name else "")
    if len(arrays) != len(layer.weights):
        return (f"{label} has {len(layer.weights)} weights but the file holds {len(arrays)} "
                f"(shapes {[tuple(a.shape) for a in arrays]})")
    for index, (value, own) in enumerate(zip(arrays, layer.weights)):
        if tuple(value.shape) != tuple(own.shape):
            what = weight_names(layer)[index].split("/")[-1]
            return (f"{label}: weight {what} has shape {tuple(value.shape)} in the file but the model expects "
                    f"{tuple(own.shape)}")
    return None
