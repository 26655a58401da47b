"""The core layers: Dense, Activation, Dropout, Flatten."""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from fastfit import activations, backend, initializers, regularizers
from fastfit._types import Config, CoreOp, Shape
from fastfit.engine.base_layer import Layer, shape_str
from fastfit.layers._weights import penalty_config, penalty_ops, take_penalties
from fastfit.layers.legacy import convert_legacy_kwargs

if TYPE_CHECKING:
    from typing_extensions import Self


def _activation_ops(name):
    return [] if name == "linear" else [("activation", name)]


def _activity_ops(regularizer):
    if regularizer is None or (regularizer.l1 == 0 and regularizer.l2 == 0):
        return []
    return [("activity_regularization", regularizer.l1, regularizer.l2)]


class Dense(Layer):
    """A fully connected layer: `output = activation(input @ kernel + bias)`.

    Keras 0.x/1 spellings (`Dense(784, 10)` for input and output size, `output_dim`, `init`, `bias`,
    `W_regularizer`, ...) are converted with a DeprecationWarning.

    Arguments:
        units: positive int, the output size.
        activation: name or function of `fastfit.activations` (default linear).
        use_bias: whether to add a bias vector.
        kernel_initializer, bias_initializer: names, config dicts or initializers.
        kernel_regularizer, bias_regularizer: `fastfit.regularizers` penalties on the weights (added to the loss).
        activity_regularizer: a penalty on the layer's output, summed over the batch.
        kernel_constraint, bias_constraint: `fastfit.constraints`, applied after each update.

    Raises:
        ValueError: `units` not a positive int, unknown activation or initializer.
    """

    _LEGACY = {"output_dim": "units", "init": "kernel_initializer", "bias": "use_bias",
               "W_regularizer": "kernel_regularizer", "b_regularizer": "bias_regularizer",
               "W_constraint": "kernel_constraint", "b_constraint": "bias_constraint"}

    def __init__(self, units: int | None = None, *args: int, **kwargs: Any) -> None:
        if args:  # Keras 0.x: Dense(input_dim, output_dim, init=..., activation=...)
            if len(args) > 1 or isinstance(args[0], bool) or not isinstance(args[0], (int, np.integer)):
                raise TypeError("Dense accepts one positional argument (units), or two ints for the Keras 0.x "
                                f"form Dense(input_dim, output_dim); got {(units,) + args!r}")
            if "input_dim" in kwargs:
                raise TypeError("Dense received `input_dim` both positionally (Keras 0.x form) and as a keyword")
            warnings.warn(f"Update your `Dense` call to the Keras 2 API: `Dense({args[0]}, input_dim={units})`",
                          DeprecationWarning, stacklevel=2)
            kwargs["input_dim"], units = units, args[0]
        if units is not None:
            kwargs["units"] = units
        convert_legacy_kwargs("Dense", kwargs, self._LEGACY)
        units = kwargs.pop("units", None)
        penalties = take_penalties("Dense", kwargs, ("kernel", "bias"))
        try:
            activity = regularizers.get(kwargs.pop("activity_regularizer", None))
        except ValueError as exc:
            raise ValueError(f"Dense: `activity_regularizer`: {exc}") from None
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"Dense: `units` must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = activations.get(kwargs.pop("activation", None))
        self.use_bias = bool(kwargs.pop("use_bias", True))
        self.kernel_initializer = initializers.for_weight(kwargs.pop("kernel_initializer", "glorot_uniform"))
        self.bias_initializer = initializers.for_weight(kwargs.pop("bias_initializer", "zeros"))
        super().__init__(**kwargs)
        self.__dict__.update(penalties)
        self.activity_regularizer = activity
        # The weight arrays (np.ndarray) once built; the bias stays None without `use_bias`.
        self.kernel: Any = None
        self.bias: Any = None

    def check_input_shape(self, input_shape: Shape) -> None:
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"Layer '{self.name}' (Dense) expects 2-D input (batch, features) with a known "
                             f"feature count, got shape {shape_str(input_shape)}; add a Flatten layer first")
        if self.built and input_shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"Layer '{self.name}' (Dense) expects {self.kernel.shape[0]} input features, got "
                             f"shape {shape_str(input_shape)}")

    def weight_shapes(self, input_shape: Shape) -> dict[str, tuple[int, ...]]:
        """The weights' names and shapes for `input_shape` (batch axis included), in order."""
        shapes: dict[str, tuple[int, ...]] = {"kernel": (int(input_shape[-1]), self.units)}
        if self.use_bias:
            shapes["bias"] = (self.units,)
        return shapes

    def build(self, input_shape: Shape) -> None:
        shape = (int(input_shape[-1]), self.units)
        self.kernel = np.ascontiguousarray(self.kernel_initializer(shape, dtype=self.dtype))
        self.bias = (np.ascontiguousarray(self.bias_initializer((self.units,), dtype=self.dtype))
                     if self.use_bias else None)
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape[:-1]) + (self.units,)

    @property
    def weights(self) -> list[np.ndarray]:
        if not self.built:
            return []
        return [self.kernel, self.bias] if self.use_bias else [self.kernel]

    def core_ops(self) -> list[CoreOp]:
        return ([("dense", self.kernel, self.bias)] + _activation_ops(self.activation)
                + penalty_ops(self, ("kernel", "bias")) + _activity_ops(self.activity_regularizer))

    def get_config(self) -> Config:
        config = super().get_config()
        config.update({
            "units": self.units, "activation": self.activation, "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        })
        config.update(penalty_config(self, ("kernel", "bias")))
        config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        # Keras 2 order: kernel_regularizer, bias_regularizer, activity_regularizer, then the constraints.
        order = ["kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                 "bias_constraint"]
        return {**{k: v for k, v in config.items() if k not in order}, **{k: config[k] for k in order}}

    @classmethod
    def from_config(cls, config: Config) -> Self:
        config = dict(config)
        config.pop("quantization_config", None)  # Keras 3 writes it; always None for float models
        return cls(**config)


class Activation(Layer):
    """Applies an activation function: `Activation('softmax')`."""

    def __init__(self, activation: str | Callable[..., Any] | None, **kwargs: Any) -> None:
        self.activation = activations.get(activation)
        super().__init__(**kwargs)

    def check_input_shape(self, input_shape: Shape) -> None:
        if self.activation == "softmax" and len(input_shape) != 2:
            raise ValueError(f"Layer '{self.name}' (softmax) supports 2-D input (batch, features) only, got "
                             f"shape {shape_str(input_shape)}; add a Flatten layer first")

    def core_ops(self) -> list[CoreOp]:
        return _activation_ops(self.activation)

    def get_config(self) -> Config:
        return dict(super().get_config(), activation=self.activation)


class Dropout(Layer):
    """Inverted dropout, active only during `fit`: each input is zeroed with probability `rate`.

    Arguments:
        rate: float in [0, 1). (Keras 1 spelling: `p`.)
        noise_shape: accepted for compatibility, only as None.
        seed: int; default drawn from the global seed (`fastfit.utils.set_random_seed`).

    Raises:
        ValueError: `rate` outside [0, 1).
    """

    def __init__(self, rate: float | None = None, noise_shape: None = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        if rate is not None:
            kwargs["rate"] = rate
        convert_legacy_kwargs("Dropout", kwargs, {"p": "rate"})
        rate = kwargs.pop("rate", None)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.number)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: `rate` must be a number in [0, 1), got {rate!r}")
        if noise_shape is not None:
            raise ValueError("Dropout: `noise_shape` is not supported by fastfit (only None)")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"Dropout: `seed` must be a non-negative integer or None, got {seed!r}")
        self.rate = float(rate)
        self.noise_shape = None
        self.seed = seed
        self._op_seed = int(seed) if seed is not None else backend.draw_seed()
        super().__init__(**kwargs)

    def core_ops(self) -> list[CoreOp]:
        return [("dropout", self.rate, self._op_seed)] if self.rate > 0 else []

    def get_config(self) -> Config:
        return dict(super().get_config(), rate=self.rate, noise_shape=None, seed=self.seed)


class Flatten(Layer):
    """Flattens each sample to one axis: (batch, 28, 28) → (batch, 784)."""

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(f"Flatten: `data_format` must be None, 'channels_last' or 'channels_first', "
                             f"got {data_format!r}")
        self.data_format = data_format
        super().__init__(**kwargs)

    def check_input_shape(self, input_shape: Shape) -> None:
        # channels_first moves the channel axis last before flattening (Keras 2.2): a different element order,
        # unless the move is trivial (2-D input, one channel, or nothing but channels).
        reorders = len(input_shape) > 2 and input_shape[1] != 1 and any(d != 1 for d in input_shape[2:])
        if self.data_format == "channels_first" and reorders:
            raise ValueError(f"Layer '{self.name}' (Flatten): data_format='channels_first' reorders the features of "
                             f"input shape {shape_str(input_shape)}, which fastfit does not do; move the channel "
                             "axis last in your data (np.moveaxis(x, 1, -1)) and use the default data_format")
        if any(d is None for d in input_shape[1:]):
            raise ValueError(f"Layer '{self.name}' (Flatten) needs a fully known input shape, got "
                             f"{shape_str(input_shape)}")

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        size = math.prod(input_shape[1:])  # exact: an int64 product could wrap around
        if size >= 1 << 63:
            raise ValueError(f"Layer '{self.name}' (Flatten): input shape {shape_str(input_shape)} flattens to "
                             f"{size} features, more than a 64-bit size holds")
        return (input_shape[0], size)

    def get_config(self) -> Config:
        return dict(super().get_config(), data_format=self.data_format)
