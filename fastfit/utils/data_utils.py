"""`Sequence`: a data set served batch by batch (Keras 2 `keras.utils.Sequence`).

`fit`, `fit_generator`, `evaluate`, `predict` and their `*_generator` forms read a `Sequence` through
worker threads (or processes with `use_multiprocessing=True`) that prefetch batches while the engine trains;
the batches reach the engine in index order (shuffled per epoch from the model seed when `shuffle=True`),
so the result does not depend on the number of workers.
"""
from collections.abc import Iterator
from typing import Any


class Sequence:
    """Base class for a data set that serves whole batches by index.

    Subclasses implement `__len__` (the number of batches) and `__getitem__(index)` (batch `index`, as
    `(x, y)` or `(x, y, sample_weight)`; for `predict`, `x` alone is accepted). `on_epoch_end` runs after
    every epoch, when no worker is reading. With `use_multiprocessing=True` the workers are forked processes
    holding a copy of the sequence made at the start of each epoch, so `__getitem__` must not rely on state
    it changes itself.
    """

    use_sequence_api = True

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index)")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__()")

    def on_epoch_end(self) -> None:
        """Called after every epoch (e.g. to reshuffle the samples the batches are made of)."""

    def __iter__(self) -> Iterator[Any]:
        for index in range(len(self)):
            yield self[index]


def is_sequence(value: Any) -> bool:
    """True for a `Sequence`, or any object with the same protocol (Keras's own `Sequence` included)."""
    if isinstance(value, Sequence):
        return True
    kind = type(value)
    return (callable(getattr(kind, "__getitem__", None)) and callable(getattr(kind, "__len__", None))
            and callable(getattr(kind, "on_epoch_end", None)))


__all__ = ["Sequence"]
