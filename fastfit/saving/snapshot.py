"""A model file's content captured in memory, to be written to HDF5 afterwards (maybe by another thread).

`Snapshot` stands in for an `h5py.Group` for the writers of this package (`attrs[...] = ...`,
`create_group`, `create_dataset(name, data=...)`): they fill it, then `replay` builds the real file from it.
With `copy=True` the arrays are copied, which is all the work left on the training thread when a
checkpoint is written behind; a synchronous save keeps references instead.

A snapshot is not changed once captured (its `structure` key is computed once), and `refilled` makes a new
one that shares its metadata and holds other arrays.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np


class Snapshot:
    """An in-memory HDF5 group: attributes, subgroups and datasets, in creation order."""

    def __init__(self, copy: bool = True) -> None:
        self.attrs: dict[str, Any] = {}
        self._copy = copy
        self._children: list[tuple[str, Snapshot | np.ndarray]] = []
        self._structure: Any = None
        self.source_ids: list[int] = []  # id() of each `data` given to create_dataset, in creation order (whole tree)

    def create_group(self, name: str) -> Snapshot:
        group = Snapshot(self._copy)
        group.source_ids = self.source_ids
        self._children.append((name, group))
        return group

    def create_dataset(self, name: str, data: np.ndarray) -> None:
        # Copied when the file is written later: the engine updates weights and slots in place. C order: the
        # file stores the array's bytes as they are in memory.
        self.source_ids.append(id(data))
        self._children.append((name, np.array(data, order="C", copy=True) if self._copy else
                               np.asarray(data, order="C")))

    @property
    def nbytes(self) -> int:
        """Bytes of array data held (roughly the file size)."""
        return sum(child.nbytes for _, child in self._children)

    def arrays(self) -> Iterable[np.ndarray]:
        """The datasets' arrays in the order `replay` creates them."""
        for _, child in self._children:
            if isinstance(child, Snapshot):
                yield from child.arrays()
            else:
                yield child

    def structure(self) -> Any:
        """A hashable key of everything but the array values: equal keys give equal HDF5 metadata."""
        if self._structure is None:
            attrs = tuple((name, _attr_key(value)) for name, value in self.attrs.items())
            children = tuple((name, child.structure() if isinstance(child, Snapshot) else
                              (child.dtype.str, child.shape)) for name, child in self._children)
            self._structure = attrs, children
        return self._structure

    def refilled(self, arrays: Iterable[np.ndarray]) -> Snapshot:
        """A snapshot with this one's metadata and `arrays` as its datasets.

        Arguments:
            arrays: C-contiguous arrays in `arrays()` order, each of the dtype and shape of the one it replaces
                (the caller's promise: the structure key is reused, not recomputed).
        """
        return self._refill(iter(arrays))

    def _refill(self, arrays):
        twin = Snapshot(self._copy)
        twin.attrs, twin.source_ids = self.attrs, self.source_ids
        twin._structure = self.structure()
        twin._children = [(name, child._refill(arrays) if isinstance(child, Snapshot) else next(arrays))
                          for name, child in self._children]
        return twin


def _attr_key(value):
    if isinstance(value, np.ndarray):
        return type(value).__name__, value.dtype.str, value.shape, value.tobytes()
    return type(value).__name__, value


def replay(snapshot: Snapshot, group: Any, create_dataset: Callable[..., Any]) -> None:
    """Write everything recorded in `snapshot` into the h5py group (or file) `group`.

    Arguments:
        create_dataset: `create_dataset(group, name, array)` writes one dataset.
    """
    for name, value in snapshot.attrs.items():
        group.attrs[name] = value
    for name, child in snapshot._children:
        if isinstance(child, Snapshot):
            replay(child, group.create_group(name), create_dataset)
        else:
            create_dataset(group, name, child)
