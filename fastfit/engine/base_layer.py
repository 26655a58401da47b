"""The `Layer` base class and the symbolic tensors that connect layers into a graph.

Layers hold their parameters as NumPy arrays. Calling a layer on a `SymbolicTensor` (from `Input` or another
layer) builds it for that input shape, checks the shape, and returns a new tensor remembering where it came
from; models walk these links to find their layers. Layers never compute on data themselves: models compile
their chain of layers into core ops (`core_ops`).
"""
from __future__ import annotations

import contextvars
import re
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fastfit import backend
from fastfit._types import Config, CoreOp, Shape

if TYPE_CHECKING:
    from typing_extensions import Self

# Called as check(layer, input_shape) before a layer builds, when set (fastfit.saving.config_limits: a model
# rebuilt from a file's config may not allocate more weights than the file holds).
BUILD_CHECK: contextvars.ContextVar[Callable | None] = contextvars.ContextVar("fastfit_build_check", default=None)


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def shape_str(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


class SymbolicTensor:
    """A placeholder for data flowing through a graph: a shape (batch axis `None`) and its producer."""

    def __init__(self, shape: Sequence[int | None], dtype: str, layer: Layer,
                 inbound: SymbolicTensor | None = None) -> None:
        self.shape = tuple(shape)
        self.dtype = dtype
        self.layer = layer        # the layer that produced this tensor
        self.inbound = inbound    # the tensor that layer was called on (None for an Input)

    @property
    def _keras_shape(self) -> Shape:
        return self.shape

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={shape_str(self.shape)} from layer '{self.layer.name}'>"


def _normalise_shape(shape, argument, layer_name):
    try:
        shape = tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):
        raise TypeError(f"Layer '{layer_name}': `{argument}` must be a tuple of ints, got {shape!r}") from None
    if any(d is not None and d <= 0 for d in shape):
        raise ValueError(f"Layer '{layer_name}': `{argument}` must hold positive sizes, got {shape!r}")
    return shape


class Layer:
    """Base class of all layers.

    Arguments (keywords common to every layer): `name`, `trainable`, `input_shape`, `input_dim`,
    `batch_input_shape`, `batch_size`, `dtype` ('float32' or 'float64'), `weights` (initial weights, a list of
    arrays).
    """

    _FLOAT_DTYPES_ONLY = True  # the engines compute in float32 or float64

    def __init__(self, name: str | None = None, trainable: bool = True, input_shape: Sequence[int | None] | None = None,
                 input_dim: int | None = None, batch_input_shape: Sequence[int | None] | None = None,
                 batch_size: int | None = None, dtype: str | np.dtype | None = None,
                 weights: Sequence[npt.ArrayLike] | None = None, **kwargs: Any) -> None:
        if "input_dtype" in kwargs:
            dtype = _legacy_input_dtype(type(self).__name__, kwargs.pop("input_dtype"), dtype)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword arguments {sorted(kwargs)}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: `name` must be a non-empty string, got {name!r}")
        self.name = name or backend.unique_name(snake_case(type(self).__name__))
        self.trainable = bool(trainable)
        self.dtype = _check_dtype(dtype, type(self).__name__, self._FLOAT_DTYPES_ONLY)
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (batch_size,) + tuple(_normalise_shape(input_shape, "input_shape", self.name))
        self.batch_input_shape = (None if batch_input_shape is None
                                  else _normalise_shape(batch_input_shape, "batch_input_shape", self.name))
        self._initial_weights = weights
        self.built = False
        # (input tensor, output tensor) for each call of this layer
        self._nodes: list[tuple[SymbolicTensor | None, SymbolicTensor]] = []
        self._built_input_shape: Shape | None = None

    # -- to override ----------------------------------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        """Create the weights for `input_shape` (batch axis included, `None`)."""
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def weight_shapes(self, input_shape: Shape) -> dict[str, tuple[int, ...]]:
        """The names and shapes of the weights `build(input_shape)` creates, in order, without creating them
        (a layer built from its config can check saved weights against this)."""
        return {}

    def check_input_shape(self, input_shape: Shape) -> None:
        """Raise ValueError naming this layer when it cannot take `input_shape`."""

    def core_ops(self) -> list[CoreOp]:
        """The core ops that apply this layer to a 2-D batch (see docs/architecture.md)."""
        return []

    @property
    def weights(self) -> list[np.ndarray]:
        return []

    # -- graph ------------------------------------------------------------------------------------------
    def __call__(self, inputs: SymbolicTensor | Sequence[SymbolicTensor], **kwargs: Any) -> SymbolicTensor:
        check_lowerable(self)
        if kwargs:
            raise TypeError(f"Layer '{self.name}': unexpected call arguments {sorted(kwargs)}; fastfit layers "
                            "take one tensor (no `training=` or `mask=`: dropout is active in `fit` only)")
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 1:
                raise ValueError(f"Layer '{self.name}' takes one input tensor, got a list of {len(inputs)}")
            inputs = inputs[0]
        if not isinstance(inputs, SymbolicTensor):
            raise TypeError(f"Layer '{self.name}' must be called on a tensor from `Input(...)` or another layer, "
                            f"got {type(inputs).__name__}; to run a model on data use `model.predict`")
        self.check_input_shape(inputs.shape)
        if not self.built:
            check = BUILD_CHECK.get()
            if check is not None:
                check(self, inputs.shape)
            self.build(inputs.shape)
            self._built_input_shape = inputs.shape
            self._set_initial_weights()
        elif self._built_input_shape is not None and not _compatible(self._built_input_shape, inputs.shape):
            raise ValueError(f"Layer '{self.name}' was built for input shape {shape_str(self._built_input_shape)} "
                             f"and cannot be called on shape {shape_str(inputs.shape)}")
        output = SymbolicTensor(self.compute_output_shape(inputs.shape), self.dtype, self, inputs)
        self._nodes.append((inputs, output))
        return output

    def _set_initial_weights(self):
        if self._initial_weights is not None:
            weights, self._initial_weights = self._initial_weights, None
            self.set_weights(weights)

    def _node_attribute(self, index, what):
        if not self._nodes:
            raise AttributeError(f"Layer '{self.name}' is not connected: it has no {what} yet "
                                 "(add it to a model or call it on a tensor)")
        if len(self._nodes) > 1:
            raise AttributeError(f"Layer '{self.name}' has {len(self._nodes)} inbound nodes, so its {what} is "
                                 "ambiguous")
        return self._nodes[0][index]

    @property
    def input(self) -> SymbolicTensor:
        return self._node_attribute(0, "input")

    @property
    def output(self) -> SymbolicTensor:
        return self._node_attribute(1, "output")

    @property
    def input_shape(self) -> Shape:
        if self._nodes:
            return self._node_attribute(0, "input shape").shape
        if self._built_input_shape is not None:
            return self._built_input_shape
        if self.batch_input_shape is not None:
            return self.batch_input_shape
        raise AttributeError(f"Layer '{self.name}' has no input shape yet")

    @property
    def output_shape(self) -> Shape:
        if self._nodes:
            return self._node_attribute(1, "output shape").shape
        return self.compute_output_shape(self.input_shape)

    # -- weights ----------------------------------------------------------------------------------------
    @property
    def trainable_weights(self) -> list[np.ndarray]:
        return list(self.weights) if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        return [] if self.trainable else list(self.weights)

    def get_weights(self) -> list[np.ndarray]:
        """Return copies of this layer's weights (kernel, then bias)."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: Sequence[npt.ArrayLike]) -> None:
        """Copy `weights` into this layer's arrays in place.

        Raises:
            ValueError: wrong number of arrays, or a shape that does not match (names the layer and both shapes).
        """
        own = self.weights
        weights = list(weights)
        if len(weights) != len(own):
            raise ValueError(f"Layer '{self.name}' expects {len(own)} weight arrays, got {len(weights)}")
        values = []
        for target, value in zip(own, weights):
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(f"Layer '{self.name}': weight shape {value.shape} does not match the expected "
                                 f"shape {target.shape}")
            if not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
                raise TypeError(f"Layer '{self.name}': weights must be real numbers, got dtype {value.dtype}")
            values.append(value)
        for target, value in zip(own, values):  # all checked first: a bad list changes nothing
            target[...] = value

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    # -- config -----------------------------------------------------------------------------------------
    def get_config(self) -> Config:
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self.batch_input_shape is not None:
            config["batch_input_shape"] = list(self.batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config: Config) -> Self:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Layers pickled before the seed was renamed hold their dropout/noise seed as `_engine_seed`.
        if "_engine_seed" in state:
            state = dict(state)
            state["_op_seed"] = state.pop("_engine_seed")
        self.__dict__.update(state)


# Methods through which a Keras layer computes: a class outside fastfit that defines one of them describes a
# computation the engines cannot run (they only run the ops of fastfit's own layers, `core_ops`).
_COMPUTING_METHODS = ("call", "build", "compute_output_shape", "get_output_shape_for", "get_output", "compute_mask")


def check_lowerable(layer: Layer) -> None:
    """Raise ValueError when `layer`'s class adds its own computation (a custom `call`, `build`, ...).

    fastfit runs a model as the core ops of its built-in layers; a subclass written outside fastfit may
    change `__init__` defaults, properties or `get_config`, but a `call` (or a `build`/`compute_output_shape`
    without core ops of its own) would be silently replaced by the parent's computation, so it is refused.
    """
    for cls in type(layer).__mro__:
        if cls is Layer or cls.__module__.split(".")[0] == "fastfit":
            return
        defined = [name for name in _COMPUTING_METHODS if name in vars(cls)]
        if "core_ops" in vars(cls):  # fastfit's own lowering: shapes and weights are its business
            defined = [name for name in defined if name == "call"]
        if defined:
            built_in = ", ".join(_built_in_layer_names())
            raise ValueError(
                f"Layer '{layer.name}' of class {type(layer).__name__} defines its own "
                f"{', '.join(f'`{name}`' for name in defined)} (in {cls.__qualname__}): custom layers are not "
                f"supported by fastfit's compiled engines, which run only the built-in layers ({built_in}). "
                "Build the model from those layers.")


def _built_in_layer_names():
    """The public layer classes fastfit defines (found as subclasses of `Layer`, so this module need not import
    `fastfit.layers`)."""
    names, pending = set(), [Layer]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            if sub.__module__.split(".")[0] == "fastfit" and not sub.__name__.startswith("_"):
                names.add(sub.__name__)
    return sorted(names)


def _check_dtype(dtype, owner, float_only):
    try:
        name = np.dtype(dtype or backend.floatx()).name
    except TypeError:
        name = None
    if name is None or float_only and name not in ("float32", "float64"):
        raise ValueError(f"{owner}: `dtype` must be 'float32' or 'float64' (fastfit computes in one of them; "
                         f"mixed precision policies are not supported), got {dtype!r}")
    return name


def _legacy_input_dtype(owner, input_dtype, dtype):
    """Keras 1's `input_dtype` keyword, which Keras 2 layers still accepted, is `dtype`."""
    if dtype is not None:
        raise TypeError(f"{owner} received both the legacy keyword argument `input_dtype` and the Keras 2 keyword "
                        "argument `dtype`; pass only `dtype`")
    warnings.warn(f"Update your `{owner}` call to the Keras 2 API: `input_dtype` is now `dtype`", DeprecationWarning,
                  stacklevel=4)
    return input_dtype


def _compatible(built, given):
    return len(built) == len(given) and all(a is None or b is None or a == b for a, b in zip(built, given))
