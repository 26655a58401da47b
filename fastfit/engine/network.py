"""`Network`: a graph of layers from input tensors to output tensors (the functional API).

fastfit graphs are chains: every layer takes one tensor. A model may have several outputs (for example every
layer's output of another model, as the DLwP `ActivationLogger` does); each output is then a chain from the
input, which is how the engines run it.
"""
from __future__ import annotations

import collections
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fastfit import backend
from fastfit._types import Config, Shape, SymbolicTensors
from fastfit._version import __version__
from fastfit.engine.base_layer import Layer, SymbolicTensor
from fastfit.engine.input_layer import InputLayer
from fastfit.utils.summary import print_summary


def _as_tensor_list(tensors, argument):
    single = isinstance(tensors, SymbolicTensor)
    tensors = [tensors] if single else list(tensors) if isinstance(tensors, (list, tuple)) else None
    if not tensors or not all(isinstance(t, SymbolicTensor) for t in tensors):
        raise TypeError(f"Model: `{argument}` must be a tensor or a list of tensors from `Input(...)` and layer "
                        f"calls, got {tensors!r}")
    return tensors, single


class Network:
    """A graph of layers. Built by `Model(inputs, outputs)` or incrementally by `Sequential`."""

    def __init__(self, inputs: SymbolicTensors | None = None, outputs: SymbolicTensors | None = None,
                 name: str | None = None, **kwargs: Any) -> None:
        if "input" in kwargs or "output" in kwargs:  # Keras 1 spelling Model(input=..., output=...)
            import warnings
            warnings.warn("Update your `Model` call to the Keras 2 API: `Model(inputs=..., outputs=...)`",
                          DeprecationWarning, stacklevel=3)
            if inputs is not None and "input" in kwargs or outputs is not None and "output" in kwargs:
                raise TypeError("Model received both the legacy `input`/`output` and `inputs`/`outputs` arguments")
            inputs = kwargs.pop("input", inputs)
            outputs = kwargs.pop("output", outputs)
        if kwargs:
            raise TypeError(f"Model: unexpected keyword arguments {sorted(kwargs)}")
        _check_not_subclassed(type(self))
        self.name = name or backend.unique_name("model")
        self.inputs: list[SymbolicTensor] = []
        self.outputs: list[SymbolicTensor] = []
        self._single_output = True
        self._layers: list[Layer] = []
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise TypeError("Model: give both `inputs` and `outputs`")
            self._init_graph(inputs, outputs)

    def _init_graph(self, inputs, outputs):
        inputs, _ = _as_tensor_list(inputs, "inputs")
        outputs, single = _as_tensor_list(outputs, "outputs")
        if len(inputs) != 1:
            raise ValueError(f"Model: fastfit models take exactly one input tensor, got {len(inputs)}")
        for t in inputs:
            if not isinstance(t.layer, InputLayer):
                raise ValueError(f"Model: input tensors must come from `Input(...)`, got the output of layer "
                                 f"'{t.layer.name}'")
        layers, seen = [], set()
        for out in outputs:
            chain = self._chain_to_input(out, inputs[0])
            for layer in chain:
                if id(layer) not in seen:
                    seen.add(id(layer))
                    layers.append(layer)
        counts = collections.Counter(layer.name for layer in layers)
        duplicates = sorted(name for name, count in counts.items() if count > 1)
        if duplicates:
            raise ValueError(f"Model: layer names must be unique; '{duplicates[0]}' is used by more than one layer")
        self.inputs, self.outputs, self._single_output = inputs, outputs, single
        self._layers = layers
        self._invalidate()

    @staticmethod
    def _chain_to_input(tensor, input_tensor):
        """The layers from the input to `tensor`, in order. Raises ValueError if not connected."""
        chain, seen = [], []
        while tensor is not None:
            chain.append(tensor.layer)
            if tensor is input_tensor:
                return chain[::-1]
            seen.append(tensor.layer.name)
            tensor = tensor.inbound
        raise ValueError(f"Graph disconnected: output of layer '{chain[0].name}' cannot be computed from the "
                         f"model input '{input_tensor.layer.name}'; it comes from input '{chain[-1].name}' "
                         f"(layers on its path: {seen[::-1]})")

    def _invalidate(self):
        """Forget compiled engine networks (the layer structure changed)."""
        self._core_cache = {}

    # -- structure ---------------------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    @property
    def trainable(self) -> bool:
        """Whether training changes this model's weights; setting it sets every layer's flag (as tf.keras does),
        which takes effect at the next `compile` of the model being trained."""
        return getattr(self, "_trainable", True)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for layer in self.layers:
            layer.trainable = self._trainable

    @property
    def input(self) -> SymbolicTensor:
        self._require_graph("input")
        return self.inputs[0]

    @property
    def output(self) -> SymbolicTensor | list[SymbolicTensor]:
        self._require_graph("output")
        return self.outputs[0] if self._single_output else list(self.outputs)

    @property
    def input_shape(self) -> Shape:
        return self.input.shape

    @property
    def output_shape(self) -> Shape | list[Shape]:
        self._require_graph("output shape")
        return self.outputs[0].shape if self._single_output else [t.shape for t in self.outputs]

    @property
    def built(self) -> bool:
        return bool(self.outputs)

    def _require_graph(self, what):
        if not self.outputs:
            raise AttributeError(f"Model '{self.name}' has no {what} yet: give the first layer an input shape "
                                 "(`input_shape=` or `input_dim=`) or call `model.build(input_shape)`")

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """Return a layer by `name` or by `index` (in `model.layers` order).

        Raises:
            ValueError: no such layer, or neither/both arguments given.
        """
        if (name is None) == (index is None):
            raise ValueError("get_layer: give exactly one of `name` and `index`")
        if index is not None:
            if not isinstance(index, (int, np.integer)) or not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer: `index` {index!r} is out of range; the model has "
                                 f"{len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; the layers are {[l.name for l in self.layers]}")

    # -- weights -----------------------------------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        return [w for layer in self.layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        return [w for layer in self.layers for w in layer.non_trainable_weights]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of all weights, layer by layer in `model.layers` order (kernel, then bias)."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: Sequence[npt.ArrayLike]) -> None:
        """Copy `weights` (as returned by `get_weights`) into the model.

        Raises:
            ValueError: wrong count or shape (names the layer and both shapes); nothing is changed then.
        """
        weights = list(weights)
        total = sum(len(layer.weights) for layer in self.layers)
        if len(weights) != total:
            raise ValueError(f"set_weights: model '{self.name}' has {total} weight arrays, got {len(weights)}")
        position = 0
        for layer in self.layers:  # check everything before writing anything
            for own in layer.weights:
                value = np.asarray(weights[position])
                if value.shape != own.shape:
                    raise ValueError(f"set_weights: layer '{layer.name}' expects shape {own.shape}, got "
                                     f"{value.shape}")
                position += 1
        position = 0
        for layer in self.layers:
            count = len(layer.weights)
            layer.set_weights(weights[position:position + count])
            position += count

    def count_params(self) -> int:
        return int(sum(layer.count_params() for layer in self.layers))

    # -- summary and config -------------------------------------------------------------------------------
    def summary(self, line_length: int | None = None, positions: Sequence[float] | None = None,
                print_fn: Callable[[str], Any] | None = None) -> None:
        """Print Keras's layer table: name (type), output shape, parameter count."""
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn)

    def get_config(self) -> Config:
        """Keras 2 functional config: layers with inbound nodes, input and output layers."""
        layer_configs = []
        for layer in self.layers:
            inbound: list[list[list[Any]]] = []
            for inp, _out in layer._nodes:
                if inp is not None and inp.layer in self._layers:
                    inbound.append([[inp.layer.name, 0, 0, {}]])  # one node per layer within a fastfit model
            layer_configs.append({"name": layer.name, "class_name": _class_name(layer),
                                  "config": layer.get_config(), "inbound_nodes": inbound})
        return {
            "name": self.name,
            "layers": layer_configs,
            "input_layers": [[t.layer.name, 0, 0] for t in self.inputs],
            "output_layers": [[t.layer.name, 0, 0] for t in self.outputs],
        }

    def to_json(self, **kwargs: Any) -> str:
        """The model architecture as a JSON string (`{"class_name": ..., "config": ...}`)."""
        return json.dumps({"class_name": _class_name(self), "config": self.get_config(),
                           "keras_version": "2.15.0", "backend": "tensorflow", "fastfit_version": __version__},
                          **kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}, {len(self.layers)} layers>"


def _check_not_subclassed(cls):
    """Raise ValueError for a subclassed model (tf.keras style, with its own `call`): fastfit would never run it."""
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] == "fastfit":
            return
        if "call" in vars(klass):
            raise ValueError(f"Model class {cls.__name__} defines `call`: subclassed models are not supported by "
                             "fastfit's compiled engines. Build the model with `Sequential([...])` or the "
                             "functional API `Model(inputs, outputs)` from fastfit's built-in layers.")


def _class_name(obj):
    """The Keras class name written to configs (cthulhu aliases save under their Keras names)."""
    return getattr(type(obj), "_keras_class_name", type(obj).__name__)
