"""`Progbar`: the Keras 2 text progress bar.

`verbose=1` redraws one line per update (throttled to `interval` seconds); `verbose=2` prints one line when
the target is reached. On a terminal the line is rewritten in place with `\\b`/`\\r`; when stdout is not a
terminal (file, pipe, CI log) each update is printed as its own plain line.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

_WIDTH = 30


def format_value(value: Any) -> str:
    """Keras number format: `%.4f` when `abs(value) > 1e-3`, else `%.4e`; non-numbers with `str`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f" {value}"
    return " %.4f" % number if abs(number) > 1e-3 else " %.4e" % number


def format_eta(seconds: float) -> str:
    """`H:MM:SS` above an hour, `M:SS` above a minute, else `Ns`."""
    seconds = int(seconds)
    if seconds > 3600:
        return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)
    if seconds > 60:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def format_per_unit(seconds: float, unit: str = "step") -> str:
    """Time per unit: `Ns/step` from one second, `Nms/step` from a millisecond, else `Nus/step`."""
    if seconds >= 1:
        return " %.0fs/%s" % (seconds, unit)
    if seconds >= 1e-3:
        return " %.0fms/%s" % (seconds * 1e3, unit)
    return " %.0fus/%s" % (seconds * 1e6, unit)


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    try:
        if isatty is not None and isatty():
            return True
    except ValueError:  # closed stream
        return False
    return "ipykernel" in sys.modules


class Progbar:
    """Displays a progress bar.

    Arguments:
        target: total number of steps (or samples) expected, or None if unknown.
        width: bar width in characters (30).
        verbose: 0 (silent), 1 (bar) or 2 (one line at the end).
        interval: minimum seconds between two redraws (0.05).
        stateful_metrics: names whose values are shown as given instead of averaged over updates.
        unit: word used in the time per unit (`step`, as Keras 2.2 prints even when counting samples).
    """

    def __init__(self, target: int | None, width: int = _WIDTH, verbose: int = 1, interval: float = 0.05,
                 stateful_metrics: Iterable[str] | None = None, unit: str = "step") -> None:
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit = unit
        self.stateful_metrics = set(stateful_metrics or ())
        self._values: dict[str, Any] = {}  # name -> [weighted sum, weight] or the shown value for stateful metrics
        self._seen_so_far = 0
        self._start = time.time()
        self._last_update = 0.0
        self._total_width = 0

    def update(self, current: int, values: Sequence[tuple[str, Any]] | None = None, force: bool = False,
               finalize: bool | None = None) -> None:
        """Move the bar to `current` and record `values` (a list of `(name, value)` pairs).

        Non-stateful values are averaged over updates, weighted by the progress each update made.

        Arguments:
            current: the current step/sample count.
            values: list of `(name, value)`.
            force: redraw even if less than `interval` seconds passed.
            finalize: draw the finished line (default: when `current >= target`).
        """
        for name, value in values or ():
            if name in self.stateful_metrics:
                self._values[name] = value
                continue
            delta = max(current - self._seen_so_far, 1)
            total = self._values.get(name)
            if not isinstance(total, list):
                total = self._values[name] = [0.0, 0]
            total[0] += value * delta
            total[1] += delta
        self._seen_so_far = current
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        now = time.time()
        if self.verbose == 1:
            if not force and not finalize and now - self._last_update < self.interval:
                return
            self._draw(current, now, finalize)
        elif self.verbose == 2 and finalize:
            self._write(" - %.0fs" % (now - self._start) + self._metrics_text() + "\n")
        self._last_update = now

    def add(self, n: int, values: Sequence[tuple[str, Any]] | None = None) -> None:
        """Advance the bar by `n`."""
        self.update(self._seen_so_far + n, values)

    def _metrics_text(self):
        text = ""
        for name, value in self._values.items():
            if isinstance(value, list):
                value = value[0] / max(value[1], 1)
            text += " - %s:" % name + format_value(value)
        return text

    def _bar_text(self, current):
        if self.target is None:
            return "%7d/Unknown" % current
        digits = len(str(int(self.target)))
        text = "%*d/%d [" % (digits, current, self.target)
        done = int(self.width * current / self.target) if self.target > 0 else self.width
        done = min(done, self.width)
        if done > 0:
            text += "=" * (done - 1) + (">" if current < self.target else "=")
        return text + "." * (self.width - done) + "]"

    def _draw(self, current, now, finalize):
        line = self._bar_text(current)
        elapsed = now - self._start
        per_unit = elapsed / current if current else 0.0
        if finalize:
            line += " - %.0fs" % elapsed + format_per_unit(per_unit, self.unit)
        elif self.target is not None:
            line += " - ETA: " + format_eta(per_unit * (self.target - current))
        line += self._metrics_text()
        stream = sys.stdout
        if _is_terminal(stream):
            previous = self._total_width
            self._total_width = len(line)
            pad = " " * (previous - len(line)) if previous > len(line) else ""
            self._write("\b" * previous + "\r" + line + pad + ("\n" if finalize else ""), stream)
        else:
            self._write(line + "\n", stream)

    @staticmethod
    def _write(text: str, stream: TextIO | None = None) -> None:
        stream = stream or sys.stdout
        stream.write(text)
        stream.flush()
