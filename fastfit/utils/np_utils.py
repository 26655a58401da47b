"""Keras 2's `keras.utils.np_utils`: `to_categorical` and `normalize` (also exported by `fastfit.utils`)."""
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["normalize", "to_categorical"]


def to_categorical(y: npt.ArrayLike, num_classes: "int | None" = None, dtype: npt.DTypeLike = "float32",
                   **kwargs: Any) -> np.ndarray:
    """Convert integer class labels to one-hot rows (Keras 2.2 `to_categorical`).

    Arguments:
        y: integer labels, any shape (a trailing axis of size 1 is dropped).
        num_classes: total number of classes (default: max label + 1). Keras 1 spelling: `nb_classes`.
        dtype: the dtype of the result.

    Raises:
        ValueError: negative, non-integer or out-of-range labels.
    """
    if "nb_classes" in kwargs:
        if num_classes is not None:
            raise TypeError("to_categorical received both the legacy `nb_classes` and `num_classes`; pass only "
                            "`num_classes`")
        warnings.warn("The `nb_classes` argument of `to_categorical` has been renamed `num_classes`.",
                      DeprecationWarning, stacklevel=2)
        num_classes = kwargs.pop("nb_classes")
    if kwargs:
        raise TypeError(f"to_categorical: unexpected keyword arguments {sorted(kwargs)}")
    if num_classes is not None and not isinstance(num_classes, bool) and num_classes == 0:
        num_classes = None  # Keras: `if not num_classes`, infer it
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
                                    or num_classes < 1):
        raise ValueError(f"to_categorical: `num_classes` must be a positive integer, got {num_classes!r}")
    labels = np.asarray(y)
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"to_categorical: `y` must hold integer labels, got dtype {labels.dtype}")
    if labels.ndim and labels.shape[-1] == 1 and labels.ndim > 1:
        labels = labels[..., 0]
    as_int = labels.astype(np.int64)
    if labels.dtype.kind == "f" and not np.array_equal(as_int, labels):
        raise ValueError("to_categorical: `y` must hold integer labels, got non-integer values")
    if as_int.size and as_int.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, got {as_int.min()}")
    top = int(as_int.max()) + 1 if as_int.size else 0
    if num_classes is None:
        num_classes = top
    elif top > num_classes:
        raise ValueError(f"to_categorical: label {top - 1} is out of range for num_classes={num_classes}")
    one_hot = np.zeros(as_int.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(one_hot, as_int[..., None], 1, axis=-1)
    return one_hot


def normalize(x: npt.ArrayLike, axis: int = -1, order: int = 2) -> np.ndarray:
    """Divide `x` by its `order`-norm along `axis` (Keras 2.2 `normalize`); zero-norm slices stay unchanged.

    Returns a new float array of `x`'s float dtype (float64 for integer input).
    """
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"normalize: `x` must hold real numbers, got dtype {array.dtype}")
    norms = np.atleast_1d(np.linalg.norm(array, order, axis))
    norms[norms == 0] = 1
    return array / np.expand_dims(norms, axis)
