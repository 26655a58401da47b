"""`fastfit.datasets.mnist.load_data()`: Keras's MNIST loader, reading a local `mnist.npz` (no download)."""
from __future__ import annotations

import os

from fastfit.datasets.cache import find_local
from fastfit.datasets.npz import TrainTest, load_npz

KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


def load_data(path: str | os.PathLike = "mnist.npz") -> TrainTest:
    """Load MNIST from a Keras-format `mnist.npz` already on disk, like `keras.datasets.mnist.load_data()`.

    fastfit does not download data. The file is looked up at `path` as given, then in Keras's cache folder
    `$KERAS_HOME/datasets/` when that variable is set, then `~/.keras/datasets/` (where Keras saves its
    download), so a machine that ran Keras before works unchanged.

    Arguments:
        path: file name or path of the `.npz` (default `mnist.npz`).

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 arrays `(60000, 28, 28)`, `(60000,)`, `(10000, 28, 28)`,
        `(10000,)` for the standard file.

    Raises:
        FileNotFoundError: the file is in neither place (the message says where to get it).
        ValueError: see `load_npz`.
    """
    return load_npz(find_local(path, "datasets", "mnist.load_data", KERAS_URL))
