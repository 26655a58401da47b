"""`InputLayer` and `Input`: where a graph starts."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fastfit import backend
from fastfit._types import Config, Shape
from fastfit.engine.base_layer import Layer, SymbolicTensor, _normalise_shape


class InputLayer(Layer):
    """The entry point of a model: produces the symbolic input tensor.

    Arguments: `input_shape` (without the batch axis) or `batch_input_shape`/`batch_shape`, `batch_size`,
    `dtype`, `name`, `sparse` (must be False).
    """

    _FLOAT_DTYPES_ONLY = False  # the data is converted to the model's float dtype
    batch_input_shape: Shape  # always known for an input

    def __init__(self, input_shape: Sequence[int | None] | None = None, batch_size: int | None = None,
                 batch_input_shape: Sequence[int | None] | None = None, dtype: str | np.dtype | None = None,
                 sparse: bool = False, name: str | None = None, batch_shape: Sequence[int | None] | None = None,
                 ragged: bool = False, **kwargs: Any) -> None:
        if sparse or ragged:
            raise ValueError("InputLayer: sparse and ragged inputs are not supported")
        if batch_shape is not None and batch_input_shape is None:
            batch_input_shape = batch_shape
        if input_shape is None and batch_input_shape is None:
            raise ValueError("InputLayer: give `input_shape` (e.g. (784,)) or `batch_input_shape`")
        super().__init__(name=name or backend.unique_name("input"), input_shape=input_shape, batch_size=batch_size,
                         batch_input_shape=batch_input_shape, dtype=dtype, **kwargs)
        self.built = True
        tensor = SymbolicTensor(self.batch_input_shape, self.dtype, self, None)
        self._nodes.append((None, tensor))

    @property
    def input(self) -> SymbolicTensor:
        return self.output

    @property
    def input_shape(self) -> Shape:
        return self.batch_input_shape

    def get_config(self) -> Config:
        return {"batch_input_shape": list(self.batch_input_shape), "dtype": self.dtype, "sparse": False,
                "ragged": False, "name": self.name}


def Input(shape: int | list[int | None] | tuple[int | None, ...] | None = None,
          batch_shape: Sequence[int | None] | None = None, name: str | None = None, dtype: str | np.dtype | None = None,
          sparse: bool = False, tensor: None = None, batch_size: int | None = None, **kwargs: Any) -> SymbolicTensor:
    """Create a symbolic input tensor for the functional API: `x = Input(shape=(784,))`.

    Raises:
        ValueError: neither `shape` nor `batch_shape` given, or a non-positive size.
    """
    if tensor is not None:
        raise ValueError("Input: the `tensor` argument is not supported")
    if shape is None and batch_shape is None:
        raise ValueError("Input: give `shape` (without the batch axis), e.g. Input(shape=(784,))")
    if shape is not None and not isinstance(shape, (tuple, list)):
        shape = (shape,)
    if shape is not None:
        _normalise_shape(shape, "shape", name or "input")
    layer = InputLayer(input_shape=shape, batch_input_shape=batch_shape, batch_size=batch_size, name=name,
                       dtype=dtype, sparse=sparse, **kwargs)  # kwargs: the legacy `input_dtype`
    return layer.output
