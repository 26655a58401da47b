"""The rows each epoch of `fit` trains on, with or without tf.keras's `steps_per_epoch`."""
import warnings

import numpy as np


class BatchStream:
    """The rows each epoch of `fit` trains on.

    Without `steps_per_epoch`, epoch e is one pass over the data in the model's order for e. With it (tf.keras
    on arrays), the passes initial_epoch, initial_epoch + 1, ... are laid end to end (each in its own shuffled
    order) and epoch e takes the next `steps_per_epoch * batch_size` rows; the stream holds
    `epochs - initial_epoch` passes, as tf.keras's does, so it may run out before the last epoch.
    """

    def __init__(self, model, n, batch_size, shuffle, steps_per_epoch, initial_epoch, epochs):
        self.model, self.n, self.batch_size, self.shuffle = model, n, batch_size, shuffle
        self.steps = steps_per_epoch
        self.initial_epoch = initial_epoch
        self.rows = None if steps_per_epoch is None else steps_per_epoch * batch_size
        self.total_rows = max(0, epochs - initial_epoch) * n
        self.steps_per_epoch = -(-n // batch_size) if steps_per_epoch is None else steps_per_epoch
        self.samples_per_epoch = n if steps_per_epoch is None else self.rows

    def _span(self, epoch):
        start = (epoch - self.initial_epoch) * self.rows
        return start, min(start + self.rows, self.total_rows)

    def exhausted(self, epoch):
        if self.steps is None:
            return False
        start, stop = self._span(epoch)
        return start >= stop

    def warn_exhausted(self):
        warnings.warn(f"Your input ran out of data; interrupting training. With arrays, `steps_per_epoch` * "
                      f"epochs batches must fit in `epochs` passes over the data (here {self.steps} steps of "
                      f"{self.batch_size} samples per epoch from {self.n} samples).", UserWarning, stacklevel=4)

    def order(self, epoch):
        if self.steps is None:
            return self.model._epoch_order(epoch, self.n, self.batch_size, self.shuffle)
        start, stop = self._span(epoch)
        first, last = start // self.n, (stop - 1) // self.n
        passes = [self.model._epoch_order(self.initial_epoch + p, self.n, self.batch_size, self.shuffle)
                  for p in range(first, last + 1)]
        joined = passes[0] if len(passes) == 1 else np.concatenate(passes)
        return np.ascontiguousarray(joined[start - first * self.n: stop - first * self.n])
