"""Backend helpers of the Keras 2 API: float type, epsilon, scalar values and the global seed.

fastfit has no tensors, so `get_value`/`set_value` work on the plain Python attributes that play the role of
Keras backend variables (for example `model.optimizer.lr`).
"""
from __future__ import annotations

import collections
import random
from typing import Any

import numpy as np
import numpy.typing as npt

_FLOATX = "float32"
_EPSILON = 1e-7
_VALID_FLOATX = ("float32", "float64")

# One generator drives every random choice fastfit makes (initial weights, layer seeds, shuffle seeds), so a
# single `set_random_seed` call makes a whole script repeatable.
_rng = np.random.default_rng()

# The automatic names of layers and models (Keras 2 `K.get_uid`: `dense_1`, `dense_2`, ...) and of metric
# objects (tf.keras `K.unique_object_name`: `auc`, `auc_1`, ...); `clear_session` restarts both.
_layer_names: collections.Counter = collections.Counter()
_object_names: collections.Counter = collections.Counter()


def floatx() -> str:
    """Return the default float type as a string: 'float32' (default) or 'float64'."""
    return _FLOATX


def set_floatx(value: npt.DTypeLike) -> None:
    """Set the default float type of new layers.

    Raises:
        ValueError: `value` is not 'float32' or 'float64'.
    """
    global _FLOATX
    name = np.dtype(value).name if not isinstance(value, str) else value
    if name not in _VALID_FLOATX:
        raise ValueError(f"set_floatx: expected one of {list(_VALID_FLOATX)}, got {value!r}")
    _FLOATX = name


def epsilon() -> float:
    """Return the fuzz factor used in losses and optimizers (1e-7)."""
    return _EPSILON


def set_epsilon(value: float) -> None:
    """Set the fuzz factor (Keras: used by losses and optimizers).

    fastfit's loss kernels clip with the fixed 1e-7, so only that value is accepted (a call that changed the
    optimizers but not the losses would do half of what Keras does).

    Raises:
        ValueError: any other value (pass `epsilon=` to the optimizer to change its fuzz factor).
    """
    global _EPSILON
    if float(value) != 1e-7:
        raise ValueError(f"set_epsilon: fastfit's losses clip with the fixed epsilon 1e-7, got {value!r}; to "
                         "change an optimizer's fuzz factor pass it, e.g. Adam(epsilon=1e-4)")
    _EPSILON = float(value)


def get_value(x: Any) -> Any:
    """Return the value of a scalar or array as a plain Python number or NumPy array.

    Accepts what Keras scripts pass to `K.get_value`: Python numbers, NumPy scalars and arrays.
    """
    if isinstance(x, np.ndarray):
        return x.item() if x.ndim == 0 else x.copy()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float):
        return float(x)  # also unwraps an optimizer's `lr` handle
    if isinstance(x, int):
        return x
    raise TypeError(f"get_value: expected a number or a NumPy array, got {type(x).__name__}")


def set_value(x: Any, value: Any) -> None:
    """Set the value of `x` in place.

    `x` may be a NumPy array (written in place) or an attribute holder such as an optimizer's learning rate:
    `set_value(model.optimizer.lr, 0.01)` works because optimizers expose `lr` as a `LearningRate` handle, a
    float subclass that knows its owner.
    """
    owner = getattr(x, "_owner", None)
    if owner is not None:
        setattr(owner, x._attr, value)
        return
    if isinstance(x, np.ndarray):
        x[...] = value
        return
    raise TypeError(
        "set_value: expected a NumPy array or an optimizer attribute such as `model.optimizer.lr`, "
        f"got {type(x).__name__}")


def set_random_seed(seed: int) -> None:
    """Seed every random choice of fastfit (and Python's and NumPy's global generators).

    The same seed gives the same initial weights, shuffling and dropout masks, bit for bit, on the same machine.

    Raises:
        ValueError: `seed` is not a non-negative integer.
    """
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_random_seed: `seed` must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    _rng = np.random.default_rng(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def rng() -> np.random.Generator:
    """Return the global generator (used by initializers and to draw per-layer and per-model seeds)."""
    return _rng


def draw_seed() -> int:
    """Draw a fresh non-negative 63-bit seed from the global generator."""
    return int(_rng.integers(0, 2**63 - 1))


def unique_name(base: str) -> str:
    """Keras 2 automatic layer and model names: `dense_1`, `dense_2`, ..."""
    _layer_names[base] += 1
    return f"{base}_{_layer_names[base]}"


def unique_object_name(base: str) -> str:
    """tf.keras's automatic metric object names: `auc` for the first, then `auc_1`, `auc_2`, ..."""
    count = _object_names[base]
    _object_names[base] += 1
    return base if count == 0 else f"{base}_{count}"


def clear_session() -> None:
    """Reset the automatic layer names and metric object names (`auc`, `auc_1`, ...) (Keras compatibility)."""
    _layer_names.clear()
    _object_names.clear()


def __getattr__(name):
    """Keras backend functions on tensors (`K.function`, `K.variable`, ...) are an AttributeError naming them."""
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    raise AttributeError(f"fastfit.backend has no {name!r}: fastfit has no tensors or graph; its backend offers "
                         "floatx, set_floatx, epsilon, set_epsilon, get_value, set_value, clear_session and "
                         "set_random_seed (for tensor math on outputs, use NumPy on `model.predict(x)`)")
