"""`fastfit.datasets.fashion_mnist.load_data()`: Keras's Fashion-MNIST loader, reading the local gz files."""
from __future__ import annotations

import gzip
import os

import numpy as np

from fastfit.datasets.cache import find_local

KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
_LABELS_MAGIC, _IMAGES_MAGIC = 2049, 2051  # IDX headers: uint8 data, 1 and 3 dimensions


def load_data():
    """Load Fashion-MNIST like `keras.datasets.fashion_mnist.load_data()`.

    Reads the four gzip IDX files Keras downloads (`train-labels-idx1-ubyte.gz`, `train-images-idx3-ubyte.gz`,
    `t10k-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`) from Keras's cache folder `fashion-mnist`
    (`$KERAS_HOME/datasets/fashion-mnist/`, then `~/.keras/datasets/fashion-mnist/`) or the current folder;
    fastfit does not download.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 images `(60000, 28, 28)` and `(10000, 28, 28)`, uint8
        labels 0-9, for the standard files.

    Raises:
        FileNotFoundError: a file is missing (the message names it and where to get it).
        ValueError: a file that is not a gzip IDX file of the expected kind, or images and labels of different
            counts.
    """
    subdir = os.path.join("datasets", "fashion-mnist")
    paths = [find_local(name, subdir, "fashion_mnist.load_data", KERAS_BASE_URL + name) for name in FILES]
    y_train, x_train = _read_idx(paths[0], _LABELS_MAGIC), _read_idx(paths[1], _IMAGES_MAGIC)
    y_test, x_test = _read_idx(paths[2], _LABELS_MAGIC), _read_idx(paths[3], _IMAGES_MAGIC)
    for x, y, part in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if len(x) != len(y):
            raise ValueError(f"fashion_mnist.load_data: the {part} files hold {len(x)} images and {len(y)} labels")
    return (x_train, y_train), (x_test, y_test)


def _read_idx(path: str, magic: int) -> np.ndarray:
    """A uint8 IDX array from a gzip file, its header checked (magic number, sizes against the data)."""
    try:
        with gzip.open(path, "rb") as file:
            content = file.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"fashion_mnist.load_data: cannot read {path!r} as gzip ({error})") from None
    dims = magic - 2048
    header = 4 + 4 * dims
    if len(content) < header or int.from_bytes(content[:4], "big") != magic:
        raise ValueError(f"fashion_mnist.load_data: {path!r} is not an IDX file of {dims}-D uint8 data "
                         f"(magic number {magic} expected)")
    shape = tuple(int.from_bytes(content[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    data = np.frombuffer(content, np.uint8, offset=header)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"fashion_mnist.load_data: {path!r} declares shape {shape} but holds {data.size} values "
                         "(truncated?)")
    return data.reshape(shape)
