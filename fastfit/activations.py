"""Activation functions (Keras 2.2 names).

Layers store activations by canonical name; the engines run them. The functions here are NumPy
implementations for direct use (`fastfit.activations.relu(x)`) and the values accepted by
`Dense(activation=...)`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from fastfit._reference import activations as _twin  # the NumPy twins of the engine kernels
from fastfit.contract.names import ACTIVATIONS


def _make(name: str) -> Callable[[npt.ArrayLike], np.ndarray]:
    def activation(x: npt.ArrayLike) -> np.ndarray:
        return _twin.forward(name, np.asarray(x, dtype=np.result_type(np.asarray(x).dtype, np.float32)))
    activation.__name__ = activation.__qualname__ = name
    activation.__doc__ = f"The `{name}` activation, applied element-wise (softmax: over the last axis)."
    return activation


linear = _make("linear")
relu = _make("relu")
sigmoid = _make("sigmoid")
tanh = _make("tanh")
softmax = _make("softmax")
elu = _make("elu")
selu = _make("selu")
softplus = _make("softplus")
softsign = _make("softsign")
hard_sigmoid = _make("hard_sigmoid")
exponential = _make("exponential")


def get(identifier: str | Callable[..., Any] | None) -> str:
    """Return the canonical activation name for a name, one of this module's functions, or None (linear).

    Raises:
        ValueError: unknown name or a custom function (the engines run only the built-in activations).
    """
    if identifier is None:
        return "linear"
    name = getattr(identifier, "__name__", None)
    if callable(identifier) and isinstance(name, str) and globals().get(name) is identifier:
        return name
    if isinstance(identifier, str) and identifier in ACTIVATIONS:
        return identifier
    raise ValueError(f"Unknown activation {identifier!r}; expected one of {list(ACTIVATIONS)} "
                     "(custom activation functions are not supported by the compiled engine)")


def serialize(name: str) -> str:
    return name


def deserialize(name: str | Callable[..., Any] | None, custom_objects: dict[str, Any] | None = None) -> str:
    return get(name)
