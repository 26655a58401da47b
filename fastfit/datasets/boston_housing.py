"""`fastfit.datasets.boston_housing.load_data()`: Keras's Boston housing loader, reading a local file."""
from __future__ import annotations

import zipfile

import numpy as np

from fastfit.datasets.cache import find_local

KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/boston_housing.npz"


def load_data(path: str = "boston_housing.npz", test_split: float = 0.2, seed: int = 113):
    """Load the Boston housing prices regression data set, like `keras.datasets.boston_housing.load_data()`.

    Reads Keras's `boston_housing.npz` (arrays `x` of 13 features and `y` of prices in k$) from `path` as given
    or Keras's cache folder (`$KERAS_HOME/datasets/`, then `~/.keras/datasets/`); fastfit does not download.
    The samples are shuffled with `numpy.random.RandomState(seed)` and split as Keras does, so the same file
    gives Keras's very arrays (404 training and 102 test samples for the standard file).

    Arguments:
        path: file name or path of the `.npz`.
        test_split: fraction of the data kept for the test set, in [0, 1).
        seed: seed of the shuffle before the split.

    Returns:
        `(x_train, y_train), (x_test, y_test)`.

    Raises:
        FileNotFoundError: no such file (the message says where to get it).
        ValueError: `test_split` out of range, or a file without numeric `x` and `y` of the same length.
    """
    if isinstance(test_split, bool) or not isinstance(test_split, (int, float)) or not 0 <= test_split < 1:
        raise ValueError(f"boston_housing.load_data: `test_split` must be a number in [0, 1), got {test_split!r}")
    found = find_local(path, "datasets", "boston_housing.load_data", KERAS_URL)
    if not zipfile.is_zipfile(found):
        raise ValueError(f"boston_housing.load_data: {found!r} is not an .npz archive")
    with np.load(found, allow_pickle=False) as archive:
        if "x" not in archive.files or "y" not in archive.files:
            raise ValueError(f"boston_housing.load_data: {found!r} lacks the arrays 'x' and 'y' (found "
                             f"{sorted(archive.files)})")
        try:
            x, y = archive["x"], archive["y"]
        except ValueError as error:  # object arrays need pickle, which is refused
            raise ValueError(f"boston_housing.load_data: {found!r} holds an array that needs pickle ({error})") \
                from None
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(f"boston_housing.load_data: 'x' and 'y' in {found!r} must have the same number of rows, "
                         f"got shapes {x.shape} and {y.shape}")
    indices = np.arange(len(x))
    np.random.RandomState(seed).shuffle(indices)
    x, y = x[indices], y[indices]
    split = int(len(x) * (1 - test_split))
    return (np.array(x[:split]), np.array(y[:split])), (np.array(x[split:]), np.array(y[split:]))


__all__ = ["load_data"]
