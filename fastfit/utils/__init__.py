"""Utilities: `to_categorical`, `set_random_seed`, `plot_history`, `Sequence`, `HDF5Matrix`."""
import numpy as np

from fastfit.backend import set_random_seed
from fastfit.utils.data_utils import Sequence
from fastfit.utils.hdf5_matrix import HDF5Matrix


def to_categorical(y, num_classes=None, dtype="float32"):
    """Convert integer class labels to one-hot rows.

    Arguments:
        y: integer labels, any shape (a trailing axis of size 1 is dropped).
        num_classes: total number of classes (default: max label + 1).

    Raises:
        ValueError: negative, non-integer or out-of-range labels.
    """
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


def plot_history(history_or_csv_path, path):
    """Write a PNG of loss and metrics per epoch (train against validation). Needs `fastfit[plot]`."""
    from fastfit.utils.plotting import plot_history as _plot
    return _plot(history_or_csv_path, path)


__all__ = ["HDF5Matrix", "Sequence", "plot_history", "set_random_seed", "to_categorical"]
