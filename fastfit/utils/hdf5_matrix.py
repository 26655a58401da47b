"""`HDF5Matrix`: rows of an HDF5 dataset used in place of an array (Keras 2 `keras.utils.io_utils`).

`fit`, `evaluate` and `predict` stream it from disk in row chunks (see docs/guide/data-larger-than-memory.md)
instead of loading it; indexing it reads only the rows asked for.
"""
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np


class HDF5Matrix:
    """Rows `[start, end)` of the dataset `dataset` of the HDF5 file `datapath`, opened read-only.

    Arguments:
        datapath: path of the HDF5 file (opened once per path and shared, as in Keras 2).
        dataset: name of the dataset in the file.
        start, end: the row range to use (`end=None`: to the last row).
        normalizer: a function applied to every block of rows read (its result is what `fit` sees).

    Raises:
        ValueError: a row range outside the dataset.
    """

    refs: ClassVar[dict[str, Any]] = {}
    _lock = threading.Lock()

    def __init__(self, datapath: str, dataset: str, start: int = 0, end: int | None = None,
                 normalizer: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        import h5py
        with HDF5Matrix._lock:
            handle = self.refs.get(datapath)
            if handle is None or not handle.id.valid:
                handle = h5py.File(datapath, "r")
                self.refs[datapath] = handle
        self.data = handle[dataset]
        rows = self.data.shape[0]
        self.start = int(start)
        self.end = rows if end is None else int(end)
        if not 0 <= self.start < self.end <= rows:
            raise ValueError(f"HDF5Matrix: rows [{start}, {end}) are not a non-empty range of dataset "
                             f"'{dataset}' ({rows} rows)")
        self.normalizer = normalizer
        first = self.data[self.start:self.start + 1]
        if normalizer is not None:
            first = np.asarray(normalizer(first))
        self._base_shape = tuple(first.shape[1:])
        self._base_dtype = first.dtype

    def __len__(self) -> int:
        return self.end - self.start

    def read_rows(self, begin: int, stop: int) -> np.ndarray:
        """Rows `[begin, stop)` (relative to `start`), normalized: one contiguous read of the dataset."""
        block = self.data[self.start + begin:self.start + stop]
        return block if self.normalizer is None else np.asarray(self.normalizer(block))

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            begin, stop, step = key.indices(len(self))
            if step != 1:
                raise IndexError("HDF5Matrix: slices must have step 1")
            return self.read_rows(begin, max(begin, stop))
        if isinstance(key, (int, np.integer)):
            if not -len(self) <= key < len(self):
                raise IndexError(f"HDF5Matrix: row {key} out of range for {len(self)} rows")
            return self.read_rows(int(key) % len(self), int(key) % len(self) + 1)[0]
        index = np.asarray(key, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"HDF5Matrix: row indices must be in [0, {len(self)})")
        block = self.data[(self.start + index).tolist()]
        return block if self.normalizer is None else np.asarray(self.normalizer(block))

    @property
    def shape(self) -> tuple:
        return (len(self),) + self._base_shape

    @property
    def dtype(self) -> np.dtype:
        return self._base_dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


__all__ = ["HDF5Matrix"]
