"""The bundled UCI optical handwritten digits, split into a fixed train and test set."""
from __future__ import annotations

import gzip
import os

import numpy as np

DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "digits.csv.gz")
NUM_SAMPLES = 1797
NUM_CLASSES = 10
TEST_SAMPLES = 360
SPLIT_SEED = 0


def _read_table():
    """The 1797 x 65 uint8 table (64 pixels 0..16, then the label) from the bundled file."""
    try:
        with gzip.open(DATA_FILE, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"load_digits: the bundled data file {DATA_FILE} is missing; reinstall fastfit") from None
    if table.shape != (NUM_SAMPLES, 65):
        raise ValueError(f"load_digits: {DATA_FILE} holds a table of shape {table.shape}, "
                         f"expected ({NUM_SAMPLES}, 65); reinstall fastfit")
    return table


def stratified_split(labels: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices `(train, test)` of a seeded split that keeps each class's share in both parts.

    Rows are shuffled with `numpy.random.RandomState(seed)` (its stream is frozen across NumPy versions, so
    the split never changes). Each class gives its first `count * n_test / n` shuffled rows to the test part,
    rounded by largest remainder (ties to the smaller label) so the test part has exactly `n_test` rows. Both
    parts are then shuffled again by the same generator, so neither starts with runs of one class.

    Arguments:
        labels: 1-D integer array of class labels.
        n_test: number of test rows, `0 < n_test < len(labels)`.
        seed: seed of the shuffle.

    Returns:
        `(train_idx, test_idx)`: int64 arrays, each in shuffled order.
    """
    labels = np.asarray(labels)
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n_test / len(labels)
    per_class = np.floor(quota).astype(np.int64)
    short = n_test - int(per_class.sum())
    # stable sort of the negated remainders: the largest first, ties to the smaller label
    per_class[np.argsort(-(quota - per_class), kind="stable")[:short]] += 1
    is_test = np.zeros(len(labels), dtype=bool)
    shuffled = labels[order]
    for cls, take in zip(classes, per_class):
        is_test[order[np.flatnonzero(shuffled == cls)[:take]]] = True
    return rng.permutation(np.flatnonzero(~is_test)), rng.permutation(np.flatnonzero(is_test))


def load_digits(flatten: bool = True) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load the UCI optical handwritten digits (8x8 grey images of the digits 0-9).

    The 1797 images are split once and for all into 1437 training and 360 test images: a stratified split
    (every digit keeps its share: 35 to 37 test images per class) drawn with the fixed seed 0, so every call
    on every machine returns the same arrays. Pixels are the original counts 0..16 divided by 16.

    Source: E. Alpaydin, C. Kaynak (1998), UCI Machine Learning Repository, https://doi.org/10.24432/C50P49,
    licensed CC BY 4.0 (see `fastfit/datasets/data/README.md`).

    Arguments:
        flatten: True (default) for images as rows of 64 values, shape `(n, 64)`; False for `(n, 8, 8)`.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: `x` float32 in [0, 1], `y` int64 labels in 0..9, shapes
        `(1437, 64)`/`(1437,)` and `(360, 64)`/`(360,)`.

    Raises:
        TypeError: `flatten` is not a bool.
        FileNotFoundError: the bundled data file is missing (a broken install).
    """
    if not isinstance(flatten, (bool, np.bool_)):
        raise TypeError(f"load_digits: `flatten` must be True or False, got {flatten!r}")
    table = _read_table()
    x = table[:, :64].astype(np.float32) / np.float32(16.0)
    y = table[:, 64].astype(np.int64)
    if not flatten:
        x = x.reshape(-1, 8, 8)
    train, test = stratified_split(y, TEST_SAMPLES, SPLIT_SEED)
    return (x[train], y[train]), (x[test], y[test])
