"""Weight initializers (Keras 2 names, defaults and configs).

Every initializer draws from `fastfit.backend.rng()` unless it was given its own `seed`, so
`fastfit.utils.set_random_seed` fixes all initial weights.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fastfit import backend


class Initializer:
    """Base class: `init(shape, dtype)` returns a new NumPy array."""

    def __call__(self, shape: Sequence[int], dtype: npt.DTypeLike | None = None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        return cls(**config)

    def _generator(self) -> np.random.Generator:
        seed = getattr(self, "seed", None)
        return np.random.default_rng(seed) if seed is not None else backend.rng()


class Zeros(Initializer):
    def __call__(self, shape: Sequence[int], dtype: npt.DTypeLike | None = None) -> np.ndarray:
        return np.zeros(shape, dtype=dtype or backend.floatx())


class Ones(Initializer):
    def __call__(self, shape: Sequence[int], dtype: npt.DTypeLike | None = None) -> np.ndarray:
        return np.ones(shape, dtype=dtype or backend.floatx())


class Constant(Initializer):
    def __init__(self, value: float = 0) -> None:
        self.value = value

    def __call__(self, shape: Sequence[int], dtype: npt.DTypeLike | None = None) -> np.ndarray:
        return np.full(shape, self.value, dtype=dtype or backend.floatx())

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class RandomUniform(Initializer):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None) -> None:
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def __call__(self, shape: Sequence[int], dtype: npt.DTypeLike | None = None) -> np.ndarray:
        values = self._generator().uniform(self.minval, self.maxval, size=shape)
        return values.astype(dtype or backend.floatx())

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape: Sequence[int], dtype: npt.DTypeLike | None = None) -> np.ndarray:
        values = self._generator().normal(self.mean, self.stddev, size=shape)
        return values.astype(dtype or backend.floatx())

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def _truncated_normal(generator: np.random.Generator, mean: float, stddev: float,
                      shape: Sequence[int]) -> np.ndarray:
    """Normal values redrawn until they lie within two standard deviations (as TensorFlow does)."""
    values = generator.normal(0.0, 1.0, size=shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = generator.normal(0.0, 1.0, size=int(outside.sum()))
        outside = np.abs(values) > 2.0
    return mean + stddev * values


class TruncatedNormal(RandomNormal):
    def __call__(self, shape: Sequence[int], dtype: npt.DTypeLike | None = None) -> np.ndarray:
        values = _truncated_normal(self._generator(), self.mean, self.stddev, shape)
        return values.astype(dtype or backend.floatx())


def _fans(shape: Sequence[int]) -> tuple[float, float]:
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


class VarianceScaling(Initializer):
    """Scale-aware initializer behind the glorot/he/lecun families (Keras 2.2 definition)."""

    _MODES = ("fan_in", "fan_out", "fan_avg")
    # tf.keras spells Keras 2.2's truncated 'normal' as 'truncated_normal' (the same draw); its
    # 'untruncated_normal' is a different distribution fastfit does not draw.
    _DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")

    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "normal",
                 seed: int | None = None) -> None:
        if scale <= 0.0:
            raise ValueError(f"VarianceScaling: `scale` must be positive, got {scale!r}")
        if mode not in self._MODES:
            raise ValueError(f"VarianceScaling: `mode` must be one of {list(self._MODES)}, got {mode!r}")
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(f"VarianceScaling: `distribution` must be one of {list(self._DISTRIBUTIONS)}, "
                             f"got {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def __call__(self, shape: Sequence[int], dtype: npt.DTypeLike | None = None) -> np.ndarray:
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution in ("normal", "truncated_normal"):
            # 0.8796... is the stddev of a unit normal truncated at two standard deviations.
            values = _truncated_normal(self._generator(), 0.0, math.sqrt(variance) / 0.87962566103423978, shape)
        else:
            limit = math.sqrt(3.0 * variance)
            values = self._generator().uniform(-limit, limit, size=shape)
        return values.astype(dtype or backend.floatx())

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


def _variance_scaling_family(name: str, scale: float, mode: str, distribution: str) -> type[VarianceScaling]:
    def __init__(self: VarianceScaling, seed: int | None = None) -> None:
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                           "__doc__": f"{name}: VarianceScaling({scale}, {mode!r}, "
                                                      f"{distribution!r})."})


GlorotUniform = _variance_scaling_family("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _variance_scaling_family("GlorotNormal", 1.0, "fan_avg", "normal")
HeUniform = _variance_scaling_family("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _variance_scaling_family("HeNormal", 2.0, "fan_in", "normal")
LecunUniform = _variance_scaling_family("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _variance_scaling_family("LecunNormal", 1.0, "fan_in", "normal")


class Orthogonal(Initializer):
    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        self.gain, self.seed = gain, seed

    def __call__(self, shape: Sequence[int], dtype: npt.DTypeLike | None = None) -> np.ndarray:
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        flat = self._generator().normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(flat)
        q *= np.sign(np.diag(r))  # makes the result uniformly distributed over orthogonal matrices
        if rows < cols:
            q = q.T
        return (self.gain * q[:rows, :cols]).reshape(shape).astype(dtype or backend.floatx())

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

    def __call__(self, shape: Sequence[int], dtype: npt.DTypeLike | None = None) -> np.ndarray:
        if len(shape) != 2:
            raise ValueError(f"Identity initializer: expected a 2-D shape, got {tuple(shape)}")
        return (self.gain * np.eye(shape[0], shape[1])).astype(dtype or backend.floatx())

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


_ALIASES: dict[str, type[Initializer]] = {
    "zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones, "constant": Constant,
    "random_uniform": RandomUniform, "uniform": RandomUniform,
    "random_normal": RandomNormal, "normal": RandomNormal, "truncated_normal": TruncatedNormal,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_uniform": HeUniform,
    "he_normal": HeNormal, "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal, "identity": Identity, "variance_scaling": VarianceScaling,
}
_CLASSES: dict[str, type[Initializer]] = {cls.__name__: cls for cls in set(_ALIASES.values())}

# Keras 2 also spelled these as lower-case functions: `initializers.glorot_uniform(seed=1)`.
zeros, ones, constant = Zeros, Ones, Constant
random_uniform = uniform = RandomUniform
random_normal = normal = RandomNormal
truncated_normal = TruncatedNormal
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_uniform, he_normal, lecun_uniform, lecun_normal = HeUniform, HeNormal, LecunUniform, LecunNormal
orthogonal, identity = Orthogonal, Identity


def serialize(initializer: Initializer) -> dict[str, Any]:
    """Return the Keras 2 config dict `{'class_name': ..., 'config': {...}}`."""
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Initializer:
    """Build an initializer from a Keras config dict (class names of Keras 2 or 3)."""
    name = config.get("class_name")
    classes = dict(_CLASSES, **(custom_objects or {}))
    if name not in classes:
        raise ValueError(f"Unknown initializer class {name!r}; known: {sorted(_CLASSES)}. "
                         "Pass custom initializers with `custom_objects`.")
    kwargs = {k: v for k, v in (config.get("config") or {}).items() if k not in ("dtype",)}
    return classes[name](**kwargs)


def get(identifier: str | dict[str, Any] | Initializer | type[Initializer] | Callable[..., Any]) -> Initializer:
    """Return an initializer from a name ('glorot_uniform'), a config dict or an initializer instance.

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
    """
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        key = identifier if identifier in _ALIASES else identifier.lower()
        if key in _ALIASES:
            return _ALIASES[key]()
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        raise ValueError(f"Unknown initializer {identifier!r}; expected one of {sorted(_ALIASES)}")
    if callable(identifier):
        return _CallableInitializer(identifier)
    raise ValueError(f"Could not interpret initializer {identifier!r}; expected a name such as "
                     "'glorot_uniform', an Initializer or a callable(shape, dtype)")


def for_weight(identifier: Any) -> Initializer:
    """The initializer of a layer weight argument such as `bias_initializer`: `get(identifier)`, where None means
    'glorot_uniform' as in tf.keras and Keras 3 (whose `add_weight` falls back to it for float weights, so
    `Dense(1, bias_initializer=None)` draws its bias from it; Keras 2.2 failed on None)."""
    return GlorotUniform() if identifier is None else get(identifier)


class _CallableInitializer(Initializer):
    """Wraps a user function `f(shape, dtype=None)` returning an array."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def __call__(self, shape: Sequence[int], dtype: npt.DTypeLike | None = None) -> np.ndarray:
        dtype = dtype or backend.floatx()
        values = np.asarray(self.function(shape, dtype=dtype), dtype=dtype)
        if values.shape != tuple(shape):
            raise ValueError(f"initializer {self.function!r} returned shape {values.shape}, expected {tuple(shape)}")
        return values
