"""`plot_history`: a PNG of the training curves (loss and every metric, train against validation).

matplotlib is an optional dependency (`pip install "fastfit[plot]"`). The figure is drawn with matplotlib's
object API on the Agg canvas, never through `pyplot`, so it opens no window, needs no display and leaves the
user's pyplot state alone.
"""
from __future__ import annotations

import csv
import math
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastfit.callbacks.history import History

_VAL = "val_"


def _require_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plot_history needs matplotlib, which is the optional extra fastfit[plot]: "
                          "pip install \"fastfit[plot]\" (or pip install matplotlib)") from exc
    return Figure, FigureCanvasAgg


def _number(cell):
    """A CSV cell or logs value as a float; NaN for anything that is not one number (`NA`, `[1, 2]`)."""
    try:
        return float(cell)
    except (TypeError, ValueError):
        return math.nan


def read_csv_log(path: str | os.PathLike) -> tuple[list[float], dict[str, list[float]]]:
    """Read a CSVLogger file into `(epochs, {key: [values]})`.

    The separator is detected among `,`, `;`, tab and `|` (CSVLogger's `separator`); cells that are not
    numbers (`NA`) become NaN.

    Arguments:
        path: path of a CSV file whose header is `epoch,<key>,...`.

    Returns:
        `(epochs, history)`: the 0-based epoch indices and a dict of per-epoch float lists.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is empty or has no `epoch` column.
    """
    with open(path, newline="") as handle:
        header = handle.readline()
        if not header.strip():
            raise ValueError(f"plot_history: the CSV log {path!r} is empty")
        try:
            dialect = csv.Sniffer().sniff(header, delimiters=",;\t|")
            separator = dialect.delimiter
        except csv.Error:  # a single column
            separator = ","
        handle.seek(0)
        rows = list(csv.DictReader(handle, delimiter=separator))
    columns = next(csv.reader([header], delimiter=separator))
    if "epoch" not in columns:
        raise ValueError(f"plot_history: the CSV log {path!r} has no `epoch` column (columns: {columns}); "
                         f"expected a file written by CSVLogger")
    epochs = [_number(row["epoch"]) for row in rows]
    history = {key: [_number(row.get(key)) for row in rows] for key in columns if key != "epoch"}
    return epochs, history


def _as_history(source):
    """`(epochs, history dict, label)` from a History, a `history.history` dict or a CSV path."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"plot_history: no CSV log at `history_or_csv_path` {path!r}")
        epochs, history = read_csv_log(path)
        return epochs, history
    history = getattr(source, "history", source)
    if not isinstance(history, dict):
        raise TypeError("plot_history: `history_or_csv_path` must be a History (returned by fit), its "
                        f"`.history` dict or the path of a CSVLogger file, got {type(source).__name__}")
    lengths = {key: len(values) for key, values in history.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"plot_history: every key of the history needs one value per epoch, got lengths "
                         f"{lengths}")
    count = next(iter(lengths.values()), 0)
    epochs = list(getattr(source, "epoch", None) or range(count))
    if len(epochs) != count:
        epochs = list(range(count))
    return epochs, {key: [_number(value) for value in values] for key, values in history.items()}


def _panels(history):
    """The quantities to draw, in order: loss first, then metrics and other keys as first seen."""
    names = []
    for key in history:
        name = key[len(_VAL):] if key.startswith(_VAL) else key
        if name not in names:
            names.append(name)
    names.sort(key=lambda name: name != "loss")  # stable: keeps the others in order
    return names


def plot_history(history_or_csv_path: History | dict[str, list[float]] | str | os.PathLike,
                 path: str | os.PathLike) -> str | os.PathLike:
    """Write a PNG of loss and each metric per epoch, training against validation.

    One panel per quantity (`loss`, `acc`, ..., and `lr` when a callback logged it, on a log scale); the
    training curve is solid, the `val_` curve dashed. Epochs are numbered from 1 as the progress bar does.

    Arguments:
        history_or_csv_path: the `History` returned by `fit` (or `model.history`), its `history` dict
            (`{'loss': [...], 'val_loss': [...], ...}`), or the path of a file written by `CSVLogger`.
        path: where to write the image (str or path-like); the format follows the extension (`.png`).

    Returns:
        `path` as a str.

    Raises:
        ImportError: matplotlib is not installed (install the extra `fastfit[plot]`).
        TypeError: `history_or_csv_path` is none of the accepted kinds.
        FileNotFoundError: the CSV log does not exist.
        ValueError: the history is empty, has lists of different lengths, or the CSV has no `epoch` column.
    """
    epochs, history = _as_history(history_or_csv_path)
    if not history or not epochs:
        raise ValueError("plot_history: the history is empty (no epoch was recorded)")
    path = os.fspath(path)
    Figure, FigureCanvasAgg = _require_matplotlib()
    names = _panels(history)
    cols = 1 if len(names) == 1 else 2
    rows = math.ceil(len(names) / cols)
    figure = Figure(figsize=(5.5 * cols, 3.6 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    x = [epoch + 1 for epoch in epochs]
    for index, name in enumerate(names):
        axes = figure.add_subplot(rows, cols, index + 1)
        if name in history:
            axes.plot(x, history[name], "-o", markersize=3, color="tab:blue", label="train")
        if _VAL + name in history:
            axes.plot(x, history[_VAL + name], "--o", markersize=3, color="tab:orange", label="validation")
        if name == "lr" and all(value > 0 for value in history.get("lr", [])):
            axes.set_yscale("log")
        axes.set_title(name)
        axes.set_xlabel("epoch")
        axes.grid(True, alpha=0.3)
        axes.legend()
        axes.xaxis.get_major_locator().set_params(integer=True)
    figure.savefig(path, dpi=100)
    return path
