"""`CSVLogger`: one CSV row per epoch."""
from __future__ import annotations

import csv
import io
import os
from typing import Any

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

    The columns are fixed at the first epoch end this instance sees (and kept across `fit` calls); a column
    missing from a later epoch's logs is written as `NA`, keys that appear later are not added. The file is
    opened at train begin (truncated, or with `append=True` continued) and closed at train end, or when the
    logger is garbage-collected (e.g. after `fit` raised). Each row is appended with a single write and
    flushed, so other readers see it at once and a killed process leaves whole rows only. Rows are not forced
    to disk with fsync: a power cut may lose the last rows.

    Arguments:
        filename: path of the CSV file (str or path-like).
        separator: the delimiter (a single character).
        append: True: append to an existing file, writing the header only if the file is empty; False:
            overwrite.

    Raises:
        TypeError: bad `filename` or `separator`.
    """

    _file: Any = None  # the open file, from train begin to train end (class default: `__del__` after a failed init)

    _runs_no_user_code = True  # no hook runs user code: checkpoints may be written behind (checkpoint_writer)

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
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
        self.keys: list[str] | None = None
        self._file = None
        self._header_needed = False
        # Rows are formatted into this buffer by one csv writer made once per logger (not one per epoch),
        # then written to the file in one piece.
        self._row_buffer = io.StringIO(newline="")
        self._rows = csv.writer(self._row_buffer, delimiter=self.sep, dialect=csv.excel)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._close()
        header_needed = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, newline="") as existing:
                header_needed = not existing.readline().strip()
            mode = "a"
        else:
            mode = "w"
        self._file = open(self.filename, mode, newline="")
        self._header_needed = header_needed

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self._file is None:  # driven without on_train_begin
            self.on_train_begin()
        if self.keys is None:
            self.keys = sorted(logs)
        buffer = self._row_buffer
        buffer.seek(0)
        buffer.truncate()
        if self._header_needed:
            self._rows.writerow(["epoch"] + self.keys)
        self._rows.writerow([epoch] + [_cell(logs[key]) if key in logs else "NA" for key in self.keys])
        # One write of the whole row (and header) and a flush: one write syscall per row, so the file only
        # ever ends at a row boundary. No fsync: a log is not worth a disk flush per epoch.
        self._file.write(buffer.getvalue())
        self._file.flush()
        self._header_needed = False

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._close()

    def _close(self):
        handle, self._file = self._file, None
        if handle is not None:
            handle.close()

    def __del__(self):  # fit raised (no on_train_end): do not leave the file open
        try:
            self._close()
        except Exception:
            pass
