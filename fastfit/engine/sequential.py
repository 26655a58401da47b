"""`Sequential`: a linear stack of layers, built one `add` at a time."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from fastfit._types import Config

from fastfit import backend
from fastfit.engine.base_layer import Layer, SymbolicTensor, check_lowerable
from fastfit.engine.input_layer import InputLayer
from fastfit.engine.network import _class_name
from fastfit.engine.training import Model
from fastfit.layers import deserialize

if TYPE_CHECKING:
    from typing_extensions import Self


class Sequential(Model):
    """A linear stack of layers.

    Arguments:
        layers: optional list of layers to add.
        name: model name (default `sequential_N`).

    Without an input shape on the first layer (`input_shape=`, `input_dim=` or `batch_input_shape=`) the model
    builds from the first data it sees (`fit`, `evaluate`, `predict`) or at `build(input_shape)`, as in
    tf.keras; it can be compiled before that.
    """

    def __init__(self, layers: Sequence[Layer] | None = None, name: str | None = None) -> None:
        super().__init__(name=name or backend.unique_name("sequential"))
        self._input_layer: InputLayer | None = None
        self._stack: list[Layer] = []  # the layers added, without the InputLayer
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list[Layer]:
        return list(self._stack)

    def add(self, layer: Layer) -> None:
        """Append `layer` to the stack.

        Raises:
            TypeError: `layer` is not a Layer.
            ValueError: a custom layer (its own `call`, ...) that the engines cannot run.
            ValueError: its input shape does not fit the previous layer's output (names the layer), or a
                layer of the same name is already in the model.
        """
        if isinstance(layer, SymbolicTensor) and isinstance(layer.layer, InputLayer):
            layer = layer.layer  # tf.keras: `model.add(keras.Input(shape=(784,)))` adds its InputLayer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a Layer instance, got {type(layer).__name__}")
        check_lowerable(layer)
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError("Sequential.add: an InputLayer can only be the first layer")
            self._input_layer = layer
            self._relink()
            return
        if any(existing.name == layer.name for existing in self._stack):
            raise ValueError(f"Sequential.add: the model already has a layer named '{layer.name}'; layer names "
                             "must be unique")
        self._append(layer)

    def _append(self, layer):
        """`add` for a layer that is not an InputLayer and whose name is new."""
        input_layer = self._input_layer
        linked = input_layer is not None  # inputs, outputs and _layers describe the whole stack
        if not self._stack and input_layer is None and layer.batch_input_shape is not None:
            input_layer = InputLayer(batch_input_shape=layer.batch_input_shape, dtype=layer.dtype,
                                     name=layer.name + "_input")
        output = None
        if input_layer is not None:
            output = layer(self.outputs[0] if self.outputs else input_layer.output)  # checks shapes first
        self._input_layer = input_layer
        self._stack.append(layer)
        if linked:  # extend the graph by the new layer (a full relink per layer made from_config quadratic)
            self._invalidate()
            self.outputs = [output]
            self._layers.append(layer)
        else:
            self._relink()

    def pop(self) -> None:
        """Remove the last layer.

        Raises:
            TypeError: the model has no layers.
        """
        if not self._stack:
            raise TypeError("Sequential.pop: there are no layers in the model")
        layer = self._stack.pop()
        if layer._nodes:
            layer._nodes.pop()
        self._relink()

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        """Give an unbuilt model its input shape: `model.build((None, 784))`."""
        if input_shape is None:
            raise ValueError("Sequential.build: give the input shape with the batch axis, e.g. (None, 784)")
        if self._input_layer is None:
            self._input_layer = InputLayer(batch_input_shape=tuple(input_shape), name=self.name + "_input")
            try:
                self._relink()
            except Exception:  # a layer refused the shape: the model stays unbuilt
                self._input_layer = None
                self._relink()
                raise
        self._relink()
        self._compile_pending()

    def _builds_from_data(self):
        return self._input_layer is None and bool(self._stack)

    def _relink(self):
        """Recompute inputs/outputs by calling the stack on the input tensor (new graph nodes as needed)."""
        self._invalidate()
        if self._input_layer is None:
            self.inputs, self.outputs, self._layers = [], [], []
            return
        tensor = self._input_layer.output
        for layer in self._stack:
            node = next((out for inp, out in layer._nodes if inp is tensor), None)
            tensor = node if node is not None else layer(tensor)
        self.inputs, self.outputs, self._single_output = [self._input_layer.output], [tensor], True
        self._layers = [self._input_layer] + self._stack

    # -- Keras 2.2 Sequential-only predictions ------------------------------------------------------------
    def predict_proba(self, x: npt.ArrayLike, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """`predict`, warning (as Keras 2.2 does) when the outputs are not probabilities in [0, 1]."""
        predictions = cast(np.ndarray, self.predict(x, batch_size=batch_size, verbose=verbose))  # one output
        if predictions.min() < 0.0 or predictions.max() > 1.0:
            warnings.warn("Network returning invalid probability values. The last layer might not normalize "
                          "predictions into probabilities (like softmax or sigmoid would).", UserWarning,
                          stacklevel=2)
        return predictions

    def predict_classes(self, x: npt.ArrayLike, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """Class predictions: the argmax over the last axis, or for one output unit `(output > 0.5)` as int32
        of shape (n, 1) (Keras 2.2)."""
        predictions = cast(np.ndarray, self.predict(x, batch_size=batch_size, verbose=verbose))  # one output
        if predictions.shape[-1] > 1:
            return predictions.argmax(axis=-1)
        return (predictions > 0.5).astype("int32")

    def get_config(self) -> Config:
        """Keras 2 (tf.keras flavour) Sequential config with an explicit InputLayer entry."""
        layers = []
        if self._input_layer is not None:
            layers.append({"class_name": "InputLayer", "config": self._input_layer.get_config()})
        for layer in self._stack:
            layers.append({"class_name": _class_name(layer), "config": layer.get_config()})
        config = {"name": self.name, "layers": layers}
        if self._input_layer is not None:
            config["build_input_shape"] = list(self._input_layer.batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config: Config | list[Config], custom_objects: dict[str, Any] | None = None) -> Self:
        """Rebuild from a Keras 2/3 Sequential config (dict form with `layers`; InputLayer entries honoured)."""
        if isinstance(config, list):  # Keras <= 2.1 list form
            config = {"layers": config}
        model = cls(name=config.get("name"))
        names = set()
        for entry in config.get("layers", []):
            layer = deserialize(entry, custom_objects)
            if isinstance(layer, InputLayer) or not isinstance(layer, Layer):
                model.add(layer)
                continue
            if layer.name in names:
                raise ValueError(f"Sequential config: more than one layer is named '{layer.name}'; layer names "
                                 "must be unique")
            names.add(layer.name)
            model._append(layer)  # add, with the name check done here in O(1)
        if model._input_layer is None and config.get("build_input_shape"):
            model.build(tuple(config["build_input_shape"]))
        return model
