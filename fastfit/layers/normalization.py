"""BatchNormalization (Keras 2.2) for 2-D input."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fastfit import initializers
from fastfit._types import Config, ConstraintLike, CoreOp, InitializerLike, RegularizerLike, Shape
from fastfit.engine.base_layer import Layer, shape_str
from fastfit.layers._weights import penalty_config, penalty_ops, take_penalties
from fastfit.layers.legacy import convert_legacy_kwargs

if TYPE_CHECKING:
    from typing_extensions import Self


class BatchNormalization(Layer):
    """Normalizes each feature: `gamma * (x - mean) / sqrt(var + epsilon) + beta`.

    In training (`fit`) mean and var are the batch's (biased variance), and the moving statistics move towards
    them after each batch: `moving = moving * momentum + batch * (1 - momentum)`, with the batch variance
    unbiased by N / (N - (1 + epsilon)) as Keras 2.2 does. In `evaluate`, `predict` and validation the moving
    statistics are used. With `trainable = False` (at compile), as in Keras 2.2, training still normalizes
    with the batch statistics but neither gamma/beta nor the moving statistics change.

    Arguments:
        axis: -1 (the feature axis of 2-D input; 1 is the same axis).
        momentum, epsilon: floats (defaults 0.99, 1e-3).
        center, scale: whether to have beta, gamma.
        beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer: initializers
            of the weights (defaults zeros, ones, zeros, ones).
        beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint: as Dense's.

    Weights (Keras order): gamma, beta (the trained ones), moving_mean, moving_variance.
    """

    _LEGACY = {"beta_init": "beta_initializer", "gamma_init": "gamma_initializer"}

    def __init__(self, axis: int | Sequence[int] = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: InitializerLike = "zeros",
                 gamma_initializer: InitializerLike = "ones", moving_mean_initializer: InitializerLike = "zeros",
                 moving_variance_initializer: InitializerLike = "ones", beta_regularizer: RegularizerLike = None,
                 gamma_regularizer: RegularizerLike = None, beta_constraint: ConstraintLike = None,
                 gamma_constraint: ConstraintLike = None, **kwargs: Any) -> None:
        convert_legacy_kwargs("BatchNormalization", kwargs, self._LEGACY)
        beta_initializer = kwargs.pop("beta_initializer", beta_initializer)
        gamma_initializer = kwargs.pop("gamma_initializer", gamma_initializer)
        if kwargs.pop("mode", 0) != 0:
            raise ValueError("BatchNormalization: only the Keras 1 `mode=0` (feature-wise) exists in Keras 2")
        if isinstance(axis, (list, tuple)) and len(axis) == 1:
            axis = axis[0]
        if isinstance(axis, bool) or axis not in (-1, 1):
            raise ValueError(f"BatchNormalization: `axis` must be -1 (the feature axis of 2-D input), got {axis!r}")
        for name, value in (("momentum", momentum), ("epsilon", epsilon)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
                raise ValueError(f"BatchNormalization: `{name}` must be a finite number, got {value!r}")
        if epsilon <= 0:
            raise ValueError(f"BatchNormalization: `epsilon` must be > 0, got {epsilon!r}")
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.for_weight(beta_initializer)
        self.gamma_initializer = initializers.for_weight(gamma_initializer)
        self.moving_mean_initializer = initializers.for_weight(moving_mean_initializer)
        self.moving_variance_initializer = initializers.for_weight(moving_variance_initializer)
        self.__dict__.update(take_penalties("BatchNormalization", {
            "beta_regularizer": beta_regularizer, "gamma_regularizer": gamma_regularizer,
            "beta_constraint": beta_constraint, "gamma_constraint": gamma_constraint}, ("gamma", "beta")))
        super().__init__(**kwargs)
        # The weight arrays (np.ndarray) once built; gamma/beta stay None without `scale`/`center`.
        self.gamma: Any = None
        self.beta: Any = None
        self.moving_mean: Any = None
        self.moving_variance: Any = None

    def check_input_shape(self, input_shape: Shape) -> None:
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"Layer '{self.name}' (BatchNormalization) supports 2-D input (batch, features) with a "
                             f"known feature count only, got shape {shape_str(input_shape)}")
        if self.built and input_shape[-1] != self.moving_mean.shape[0]:
            raise ValueError(f"Layer '{self.name}' (BatchNormalization) expects {self.moving_mean.shape[0]} "
                             f"features, got shape {shape_str(input_shape)}")

    def weight_shapes(self, input_shape: Shape) -> dict[str, tuple[int, ...]]:
        """The weights' names and shapes for `input_shape` (batch axis included), in Keras order."""
        width = (int(input_shape[-1]),)
        names = (["gamma"] if self.scale else []) + (["beta"] if self.center else []) + ["moving_mean",
                                                                                           "moving_variance"]
        return {name: width for name in names}

    def build(self, input_shape: Shape) -> None:
        shapes = self.weight_shapes(input_shape)
        init = {"gamma": self.gamma_initializer, "beta": self.beta_initializer,
                "moving_mean": self.moving_mean_initializer, "moving_variance": self.moving_variance_initializer}
        for name, shape in shapes.items():
            setattr(self, name, np.ascontiguousarray(init[name](shape, dtype=self.dtype)))
        self.built = True

    @property
    def weights(self) -> list[np.ndarray]:
        if not self.built:
            return []
        return [w for w in (self.gamma, self.beta, self.moving_mean, self.moving_variance) if w is not None]

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        return [w for w in (self.gamma, self.beta) if w is not None] if self.trainable and self.built else []

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        if not self.built:
            return []
        return [self.moving_mean, self.moving_variance] if self.trainable else list(self.weights)

    def core_ops(self) -> list[CoreOp]:
        return ([("batch_normalization", self.gamma, self.beta, self.moving_mean, self.moving_variance,
                  self.momentum, self.epsilon)] + penalty_ops(self, ("gamma", "beta")))

    def get_config(self) -> Config:
        config = dict(super().get_config(), axis=self.axis, momentum=self.momentum, epsilon=self.epsilon,
                      center=self.center, scale=self.scale,
                      beta_initializer=initializers.serialize(self.beta_initializer),
                      gamma_initializer=initializers.serialize(self.gamma_initializer),
                      moving_mean_initializer=initializers.serialize(self.moving_mean_initializer),
                      moving_variance_initializer=initializers.serialize(self.moving_variance_initializer))
        penalties = penalty_config(self, ("beta", "gamma"))
        config.update({key: penalties[key] for key in ("beta_regularizer", "gamma_regularizer", "beta_constraint",
                                                       "gamma_constraint")})
        return config

    @classmethod
    def from_config(cls, config: Config) -> Self:
        config = dict(config)
        # Keras 3 (and tf.keras) write these; fastfit runs their neutral values only.
        for key in ("synchronized", "renorm", "renorm_clipping"):
            if config.pop(key, None):
                raise ValueError(f"BatchNormalization: `{key}` is not supported by fastfit (only its default)")
        config.pop("renorm_momentum", None)  # used only with renorm
        return cls(**config)
