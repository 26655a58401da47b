"""`CSVLogger`: one CSV row per epoch."""
import csv
import io
import os

import numpy as np

from fastfit.callbacks.base import Callback
from fastfit.utils.io_utils import atomic_write


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
    logs is written as `NA`, keys that appear later are not added. Each row is added atomically (the file is
    rewritten through a temporary file and renamed into place), so after a crash the file holds whole rows only.
    Rows are not forced to disk with fsync (a log is not worth a disk flush per epoch): a power cut may lose
    the last rows, never leave half of one. The logger keeps the file's text in memory, so adding a row
    writes the file without reading it back.

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
        self._text = None  # the file's content, from train begin on
        self._header_needed = False

    def on_train_begin(self, logs=None):
        if self.append and os.path.exists(self.filename):
            with open(self.filename, newline="") as existing:
                self._text = existing.read()
            self._header_needed = not self._text.partition("\n")[0].strip()
        else:
            with atomic_write(self.filename, "w", newline="", what="CSVLogger file", fsync=False):
                pass  # start from an empty file, as Keras does at train begin
            self._text = ""
            self._header_needed = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._text is None:  # driven without on_train_begin
            self.on_train_begin()
        if self.keys is None:
            self.keys = sorted(logs)
        row = {"epoch": epoch}
        row.update((key, _cell(logs[key]) if key in logs else "NA") for key in self.keys)
        chunk = io.StringIO(newline="")
        writer = csv.DictWriter(chunk, fieldnames=["epoch"] + self.keys, delimiter=self.sep, dialect=csv.excel)
        if self._header_needed:
            writer.writeheader()
        writer.writerow(row)
        text = self._text + chunk.getvalue()
        with atomic_write(self.filename, "w", newline="", what="CSVLogger file", fsync=False) as handle:
            handle.write(text)
        self._text, self._header_needed = text, False

    def on_train_end(self, logs=None):
        self._text = None
