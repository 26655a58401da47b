"""`CSVLogger`: one CSV row per epoch."""
import csv
import os

import numpy as np

from fastfit.callbacks.base import Callback


def _cell(value):
    """A logs value as the csv writer should see it: strings as-is, iterables as `[a, b]`, 0-d as scalars."""
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__iter__"):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return value


class CSVLogger(Callback):
    """Streams epoch results to a CSV file: a header `epoch,<sorted keys>`, then one row per epoch.

    The columns are fixed at the first epoch end this instance sees; a column missing from a later epoch's
    logs is written as `NA`, keys that appear later are not added. The file is flushed after every row and
    closed at the end of training.

    Arguments:
        filename: path of the CSV file (str or path-like).
        separator: the delimiter (a single character).
        append: True: append to an existing file, writing the header only if the file is empty; False:
            overwrite.

    Raises:
        TypeError: bad `filename` or `separator`.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        try:
            self.filename = os.fspath(filename)
        except TypeError:
            raise TypeError(f"CSVLogger: `filename` must be a str or path-like, got {type(filename).__name__} "
                            f"{filename!r}") from None
        if not isinstance(separator, str) or len(separator) != 1:
            raise TypeError(f"CSVLogger: `separator` must be a one-character string, got {separator!r}")
        self.sep = separator
        self.append = bool(append)
        self.keys = None
        self.writer = None
        self.csv_file = None
        self._header_needed = True

    def on_train_begin(self, logs=None):
        self._close()
        if self.append and os.path.exists(self.filename):
            with open(self.filename, newline="") as existing:
                self._header_needed = not existing.readline().strip()
            mode = "a"
        else:
            self._header_needed = True
            mode = "w"
        self.csv_file = open(self.filename, mode, newline="")
        self.writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.csv_file is None:  # driven without on_train_begin
            self.on_train_begin()
        if self.keys is None:
            self.keys = sorted(logs)
        if self.writer is None:
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys, delimiter=self.sep,
                                         dialect=csv.excel)
            if self._header_needed:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _cell(logs[key]) if key in logs else "NA") for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        self._close()

    def _close(self):
        if self.csv_file is not None:
            self.csv_file.close()
        self.csv_file = None
        self.writer = None

    def __del__(self):
        try:
            self._close()
        except Exception:  # interpreter shutdown
            pass
