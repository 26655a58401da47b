"""Noise and penalty layers (Keras 2.2): GaussianNoise, GaussianDropout, AlphaDropout, ActivityRegularization.

The noise layers act in `fit` only (the identity in evaluate, predict and validation) and draw from the
counter-based RNG of Dropout, so the same seed gives the same noise, also in a resumed run.
"""
from typing import Any

import numpy as np

from fastfit import backend, regularizers
from fastfit._types import Config, CoreOp
from fastfit.engine.base_layer import Layer


def _check_seed(owner, seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"{owner}: `seed` must be a non-negative integer or None, got {seed!r}")
    return seed


def _check_rate(owner, rate):
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.number)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"{owner}: `rate` must be a number in [0, 1), got {rate!r}")
    return float(rate)


class _Noise(Layer):
    _op = ""
    _argument = "rate"

    def __init__(self, value: float, seed: int | None, **kwargs: Any) -> None:
        self.seed = _check_seed(type(self).__name__, seed)
        self._op_seed = int(seed) if seed is not None else backend.draw_seed()
        setattr(self, self._argument, value)
        super().__init__(**kwargs)

    def core_ops(self) -> list[CoreOp]:
        value = getattr(self, self._argument)
        return [(self._op, value, self._op_seed)] if value > 0 else []

    def get_config(self) -> Config:
        config = dict(super().get_config(), **{self._argument: getattr(self, self._argument)})
        if self.seed is not None:
            config["seed"] = self.seed
        return config


class GaussianNoise(_Noise):
    """Adds zero-mean Gaussian noise of standard deviation `stddev` (training only)."""

    _op, _argument = "gaussian_noise", "stddev"

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any) -> None:
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float, np.number)) or not stddev >= 0 \
                or not np.isfinite(stddev):
            raise ValueError(f"GaussianNoise: `stddev` must be a finite number >= 0, got {stddev!r}")
        super().__init__(float(stddev), seed, **kwargs)


class GaussianDropout(_Noise):
    """Multiplies by Gaussian noise of mean 1 and standard deviation sqrt(rate / (1 - rate)) (training only)."""

    _op = "gaussian_dropout"

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(_check_rate("GaussianDropout", rate), seed, **kwargs)


class AlphaDropout(_Noise):
    """Dropout that keeps SELU's mean and variance: dropped inputs become -alpha * scale, then an affine map
    `a * x + b` restores the moments (Keras 2.2's formula; training only)."""

    _op = "alpha_dropout"

    def __init__(self, rate: float, noise_shape: None = None, seed: int | None = None, **kwargs: Any) -> None:
        if noise_shape is not None:
            raise ValueError("AlphaDropout: `noise_shape` is not supported by fastfit (only None)")
        self.noise_shape = None
        super().__init__(_check_rate("AlphaDropout", rate), seed, **kwargs)


class ActivityRegularization(Layer):
    """The identity, adding `l1 * sum|x| + l2 * sum x**2` over the batch to the loss (training and evaluation,
    as Keras 2.2 counts every layer loss in both)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any) -> None:
        self.regularizer = regularizers.L1L2(l1=l1, l2=l2)
        self.l1, self.l2 = self.regularizer.l1, self.regularizer.l2
        super().__init__(**kwargs)

    def core_ops(self) -> list[CoreOp]:
        if self.l1 == 0 and self.l2 == 0:
            return []
        return [("activity_regularization", self.l1, self.l2)]

    def get_config(self) -> Config:
        return dict(super().get_config(), l1=self.l1, l2=self.l2)
