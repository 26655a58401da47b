"""Weight constraints (Keras 2.2 names, defaults and configs), applied to a weight after each update.

Norms are Euclidean along `axis` (0: each column of a Dense kernel, the weights into one unit), with
Keras's fuzz factor 1e-7 in the divisions. Calling a constraint on an array returns the constrained copy
(the NumPy definition the engines follow).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Self

_EPSILON = 1e-7


class Constraint:
    """Base class of constraints."""

    kind = ""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def engine_args(self) -> tuple[float, float, float, int]:
        """(max_value, min_value, rate, axis) as the engines read them."""
        return (0.0, 0.0, 1.0, 0)


def _number(value, owner, what, low=0.0):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value) or value < low:
        raise ValueError(f"{owner}: `{what}` must be a finite number >= {low}, got {value!r}")
    return float(value)


def _axis(value, owner):
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value not in (0, 1, -1):
        raise ValueError(f"{owner}: `axis` must be 0, 1 or -1 (fastfit constrains 1-D and 2-D weights), "
                         f"got {value!r}")
    return int(value)


def _norms(w, axis):
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


class MaxNorm(Constraint):
    """Scales each slice along `axis` whose norm exceeds `max_value` back to that norm."""

    kind = "max_norm"

    def __init__(self, max_value: float = 2, axis: int = 0) -> None:
        self.max_value = _number(max_value, "MaxNorm", "max_value")
        self.axis = _axis(axis, "MaxNorm")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        norms = _norms(w, self.axis)
        return w * (np.clip(norms, 0, self.max_value) / (_EPSILON + norms))

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}

    def engine_args(self) -> tuple[float, float, float, int]:
        return (self.max_value, 0.0, 1.0, self.axis)


class NonNeg(Constraint):
    """Sets negative weights to zero."""

    kind = "non_neg"

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w * (w >= 0)


class UnitNorm(Constraint):
    """Divides each slice along `axis` by its norm."""

    kind = "unit_norm"

    def __init__(self, axis: int = 0) -> None:
        self.axis = _axis(axis, "UnitNorm")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w / (_EPSILON + _norms(w, self.axis))

    def get_config(self) -> dict:
        return {"axis": self.axis}

    def engine_args(self) -> tuple[float, float, float, int]:
        return (0.0, 0.0, 1.0, self.axis)


class MinMaxNorm(Constraint):
    """Moves each slice's norm `rate` of the way into [min_value, max_value]."""

    kind = "min_max_norm"

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: int = 0) -> None:
        self.min_value = _number(min_value, "MinMaxNorm", "min_value")
        self.max_value = _number(max_value, "MinMaxNorm", "max_value", low=self.min_value)
        self.rate = _number(rate, "MinMaxNorm", "rate")
        self.axis = _axis(axis, "MinMaxNorm")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        norms = _norms(w, self.axis)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (_EPSILON + norms))

    def get_config(self) -> dict:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}

    def engine_args(self) -> tuple[float, float, float, int]:
        return (self.max_value, self.min_value, self.rate, self.axis)


# Keras 2 lower-case aliases.
max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm
maxnorm, nonneg, unitnorm = MaxNorm, NonNeg, UnitNorm

_CLASSES = {cls.__name__: cls for cls in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)}
_ALIASES = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm,
            "maxnorm": MaxNorm, "nonneg": NonNeg, "unitnorm": UnitNorm}


def serialize(constraint: Constraint | None) -> dict[str, Any] | None:
    if constraint is None:
        return None
    return {"class_name": type(constraint).__name__, "config": constraint.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Constraint:
    """Build a constraint from a Keras config dict.

    Raises:
        ValueError: an unknown class.
    """
    name = config.get("class_name")
    cls = _CLASSES.get(name or "") or _ALIASES.get(name or "")
    if cls is None:
        raise ValueError(f"Unknown constraint class {name!r}; fastfit runs {sorted(_CLASSES)}")
    return cls(**(config.get("config") or {}))


def get(identifier: str | dict[str, Any] | Constraint | None) -> Constraint | None:
    """Return a constraint from None, an instance, a config dict or a name ('max_norm', ...).

    Raises:
        ValueError: anything else (custom constraint functions cannot run in the compiled engine).
    """
    if identifier is None:
        return None
    if isinstance(identifier, Constraint) and type(identifier) in _CLASSES.values():
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str) and (identifier in _ALIASES or identifier in _CLASSES):
        return (_ALIASES.get(identifier) or _CLASSES[identifier])()
    raise ValueError(f"Could not interpret constraint {identifier!r}; expected None, one of {sorted(_CLASSES)} "
                     "(or its config dict or name); custom constraint functions are not supported by the compiled "
                     "engine")


def core_ops(array: np.ndarray | None, constraint: Constraint | None) -> list[tuple[Any, ...]]:
    """The core op that applies `constraint` to `array` after each update (none for None)."""
    if constraint is None or array is None:
        return []
    return [("constraint", array, constraint.kind) + constraint.engine_args()]
