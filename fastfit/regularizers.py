"""Weight and activity regularizers (Keras 2.2 names, defaults and configs).

A regularizer adds `sum(l1 * |x|) + sum(l2 * x**2)` of a weight array (or of a layer's output, summed over
the batch) to the loss the model reports and trains on; the engines add its gradient `l1 * sign(x) + 2 * l2 * x`
to the update. Calling one on an array returns that penalty as a float (the NumPy definition).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fastfit import backend

if TYPE_CHECKING:
    from typing_extensions import Self


class Regularizer:
    """Base class of regularizers."""

    def __call__(self, x: npt.ArrayLike) -> float:
        return 0.0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)


def _factor(value, what):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"L1L2: `{what}` must be a finite number >= 0, got {value!r}")
    return float(value)


class L1L2(Regularizer):
    """`l1 * sum(|x|) + l2 * sum(x**2)`.

    Arguments:
        l1, l2: non-negative factors (default 0).

    Raises:
        ValueError: a factor that is negative or not a finite number.
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        # As Keras 2.2 (`K.cast_to_floatx`): the factors are floatx numbers (0.01 is 0.009999999776482582).
        self.l1 = float(np.asarray(_factor(l1, "l1"), dtype=backend.floatx()))
        self.l2 = float(np.asarray(_factor(l2, "l2"), dtype=backend.floatx()))

    def __call__(self, x: npt.ArrayLike) -> float:
        x = np.asarray(x, dtype=np.float64)
        return float(self.l1 * np.abs(x).sum() + self.l2 * np.square(x).sum())

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self) -> str:
        return f"L1L2(l1={self.l1}, l2={self.l2})"


def l1(l: float = 0.01) -> L1L2:  # noqa: E741  (Keras's argument name)
    return L1L2(l1=l)


def l2(l: float = 0.01) -> L1L2:  # noqa: E741  (Keras's argument name)
    return L1L2(l2=l)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    return L1L2(l1=l1, l2=l2)


def serialize(regularizer: L1L2 | None) -> dict[str, Any] | None:
    """The Keras 2 config dict `{'class_name': 'L1L2', 'config': {'l1': ..., 'l2': ...}}`, or None."""
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> L1L2:
    """Build a regularizer from a Keras config dict (Keras 3's `L1`, `L2`, `L1L2` class names too).

    Raises:
        ValueError: an unknown class (only the L1/L2 family runs in the engines).
    """
    name = config.get("class_name")
    inner = dict(config.get("config") or {})
    if name == "L1L2":
        return L1L2(**inner)
    if name == "L1":
        return L1L2(l1=inner.get("l1", 0.01))
    if name == "L2":
        return L1L2(l2=inner.get("l2", 0.01))
    raise ValueError(f"Unknown regularizer class {name!r}; fastfit runs 'L1L2' (l1, l2, l1_l2) only")


def get(identifier: str | dict[str, Any] | L1L2 | None) -> L1L2 | None:
    """Return an `L1L2` from None, an instance, a config dict or a name ('l1', 'l2', 'l1_l2').

    Raises:
        ValueError: anything else (custom regularizer functions cannot run in the compiled engine).
    """
    if identifier is None or isinstance(identifier, L1L2):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str) and identifier in ("l1", "l2", "l1_l2"):
        return globals()[identifier]()
    raise ValueError(f"Could not interpret regularizer {identifier!r}; expected None, fastfit.regularizers.l1(...), "
                     "l2(...), l1_l2(...), L1L2(...), their config dict or name (custom regularizer functions are "
                     "not supported by the compiled engine)")


def core_ops(array: np.ndarray | None, regularizer: L1L2 | None) -> list[tuple[Any, ...]]:
    """The core op that adds `regularizer`'s penalty on `array` (none for None or zero factors)."""
    if regularizer is None or array is None or (regularizer.l1 == 0 and regularizer.l2 == 0):
        return []
    return [("penalty", array, regularizer.l1, regularizer.l2)]
