"""`load_npz`: read a Keras-format data file such as `mnist.npz`."""
from __future__ import annotations

import os
import zipfile

import numpy as np

# `(x_train, y_train), (x_test, y_test)`, as the Keras data set loaders return them.
TrainTest = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(path: str | os.PathLike) -> TrainTest:
    """Load a Keras-format `.npz` data set, such as the `mnist.npz` that `keras.datasets.mnist` downloads.

    The arrays are returned as stored (MNIST: uint8 images `(n, 28, 28)` and uint8 labels); scale and reshape
    them yourself, e.g. `x_train.reshape(len(x_train), -1).astype('float32') / 255`. The file is read with
    `allow_pickle=False`, so loading never runs code from the file.

    Arguments:
        path: path to an `.npz` file holding the arrays `x_train`, `y_train`, `x_test` and `y_test`.

    Returns:
        `(x_train, y_train), (x_test, y_test)` as NumPy arrays.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not an `.npz` archive, a key is missing (the message names the keys found), an
            array needs pickle (object arrays), or `x` and `y` of one part have different lengths.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_npz: no file at `path` {path!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"load_npz: `path` {path!r} is not an .npz archive (expected a zip of .npy arrays "
                         f"with keys {', '.join(KEYS)})")
    with np.load(path, allow_pickle=False) as archive:
        found = sorted(archive.files)
        missing = [key for key in KEYS if key not in found]
        if missing:
            raise ValueError(f"load_npz: {path!r} lacks the key(s) {', '.join(missing)}; expected "
                             f"{', '.join(KEYS)}, found {', '.join(found) or 'no arrays'}")
        try:
            arrays = {key: archive[key] for key in KEYS}
        except ValueError as exc:  # object arrays need pickle, which we refuse
            raise ValueError(f"load_npz: {path!r} holds an array that needs pickle to load ({exc}); "
                             f"only plain numeric arrays are accepted") from None
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
            raise ValueError(f"load_npz: x_{part} and y_{part} in {path!r} must have the same number of rows, "
                             f"got shapes {x.shape} and {y.shape}")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
