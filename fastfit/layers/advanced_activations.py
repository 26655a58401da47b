"""Activation layers with parameters (Keras 2.2): LeakyReLU, PReLU, ELU, ThresholdedReLU, Softmax, ReLU."""
from __future__ import annotations

from typing import Any

import numpy as np

from fastfit import initializers
from fastfit._types import Config, ConstraintLike, CoreOp, InitializerLike, RegularizerLike, Shape
from fastfit.engine.base_layer import Layer, shape_str
from fastfit.layers._weights import penalty_config, penalty_ops, take_penalties


def _float(owner, name, value, low=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value) or (low is not None and value < low):
        bound = "" if low is None else f" >= {low}"
        raise ValueError(f"{owner}: `{name}` must be a finite number{bound}, got {value!r}")
    return float(value)


class _TwoD(Layer):
    def check_input_shape(self, input_shape: Shape) -> None:
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"Layer '{self.name}' ({type(self).__name__}) supports 2-D input (batch, features) "
                             f"with a known feature count only, got shape {shape_str(input_shape)}")


class LeakyReLU(_TwoD):
    """`x` for x > 0, `alpha * x` otherwise."""

    def __init__(self, alpha: float = 0.3, **kwargs: Any) -> None:
        self.alpha = _float("LeakyReLU", "alpha", alpha)
        super().__init__(**kwargs)

    def core_ops(self) -> list[CoreOp]:
        return [("relu", self.alpha, None, 0.0)]

    def get_config(self) -> Config:
        return dict(super().get_config(), alpha=self.alpha)


class ReLU(_TwoD):
    """Keras 2.2's `K.relu`: `x` for x > threshold (else 0), clipped to `max_value`, minus
    `negative_slope * max(threshold - x, 0)`."""

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0, threshold: float = 0.0,
                 **kwargs: Any) -> None:
        self.max_value = None if max_value is None else _float("ReLU", "max_value", max_value, low=0)
        self.negative_slope = _float("ReLU", "negative_slope", negative_slope, low=0)
        self.threshold = _float("ReLU", "threshold", threshold)
        super().__init__(**kwargs)

    def core_ops(self) -> list[CoreOp]:
        return [("relu", self.negative_slope, self.max_value, self.threshold)]

    def get_config(self) -> Config:
        return dict(super().get_config(), max_value=self.max_value, negative_slope=self.negative_slope,
                    threshold=self.threshold)


class ThresholdedReLU(_TwoD):
    """`x` for x > theta, 0 otherwise."""

    def __init__(self, theta: float = 1.0, **kwargs: Any) -> None:
        self.theta = _float("ThresholdedReLU", "theta", theta)
        super().__init__(**kwargs)

    def core_ops(self) -> list[CoreOp]:
        return [("relu", 0.0, None, self.theta)]

    def get_config(self) -> Config:
        return dict(super().get_config(), theta=self.theta)


class ELU(_TwoD):
    """`x` for x > 0, `alpha * (exp(x) - 1)` otherwise."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        self.alpha = _float("ELU", "alpha", alpha)
        super().__init__(**kwargs)

    def core_ops(self) -> list[CoreOp]:
        return [("elu", self.alpha)]

    def get_config(self) -> Config:
        return dict(super().get_config(), alpha=self.alpha)


class Softmax(_TwoD):
    """Softmax over the last axis (the only axis of 2-D input fastfit runs)."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        if axis not in (-1, 1) or isinstance(axis, bool):
            raise ValueError(f"Softmax: `axis` must be -1 (the feature axis of 2-D input), got {axis!r}")
        self.axis = int(axis)
        super().__init__(**kwargs)

    def core_ops(self) -> list[CoreOp]:
        return [("activation", "softmax")]

    def get_config(self) -> Config:
        return dict(super().get_config(), axis=self.axis)


class PReLU(_TwoD):
    """`x` for x > 0, `alpha * x` otherwise, with a trained `alpha` per feature (`shared_axes=[1]`: one).

    Arguments:
        alpha_initializer: initializer of alpha (default zeros); alpha_regularizer, alpha_constraint: as Dense's.
        shared_axes: None, or [1] to share one alpha over the features of 2-D input.
    """

    def __init__(self, alpha_initializer: InitializerLike = "zeros", alpha_regularizer: RegularizerLike = None,
                 alpha_constraint: ConstraintLike = None, shared_axes: int | list[int] | tuple[int, ...] | None = None,
                 **kwargs: Any) -> None:
        self.alpha_initializer = initializers.for_weight(alpha_initializer)
        self.__dict__.update(take_penalties("PReLU", {"alpha_regularizer": alpha_regularizer,
                                                      "alpha_constraint": alpha_constraint}, ("alpha",)))
        if shared_axes is not None and not isinstance(shared_axes, (list, tuple)):
            shared_axes = [shared_axes]
        if shared_axes is not None and (len(shared_axes) == 0 or any(a not in (1, -1) for a in shared_axes)):
            raise ValueError(f"PReLU: `shared_axes` must be None or [1] for 2-D input, got {shared_axes!r}")
        self.shared_axes = None if shared_axes is None else [1]
        super().__init__(**kwargs)
        self.alpha: Any = None  # np.ndarray once built

    def weight_shapes(self, input_shape: Shape) -> dict[str, tuple[int, ...]]:
        """{'alpha': shape} for `input_shape` (batch axis included)."""
        return {"alpha": (1,) if self.shared_axes else (int(input_shape[-1]),)}

    def build(self, input_shape: Shape) -> None:
        shape = self.weight_shapes(input_shape)["alpha"]
        self.alpha = np.ascontiguousarray(self.alpha_initializer(shape, dtype=self.dtype))
        self.built = True

    @property
    def weights(self) -> list[np.ndarray]:
        return [self.alpha] if self.built else []

    def core_ops(self) -> list[CoreOp]:
        return [("prelu", self.alpha)] + penalty_ops(self, ("alpha",))

    def get_config(self) -> Config:
        config = dict(super().get_config(), alpha_initializer=initializers.serialize(self.alpha_initializer))
        config.update(penalty_config(self, ("alpha",)))
        config["shared_axes"] = self.shared_axes
        return config
