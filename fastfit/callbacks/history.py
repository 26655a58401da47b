"""`History` (records epoch logs; returned by `fit`) and `BaseLogger` (epoch means of batch logs)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastfit.callbacks.base import Callback
from fastfit.engine.logs import Logs, spellings


class History(Callback):
    """Records every epoch's logs: `history[key]` is a list with one value per epoch, `epoch` the indices.

    `fit` creates a fresh one per call, appends it last to the callback list (so it records what other
    callbacks add, such as `lr`) and returns it; `model.history` refers to it. `history` is a
    `fastfit.engine.logs.Logs`: `history['val_acc']` finds `val_accuracy` (docs/callbacks.md, "Metric names").
    """

    _runs_no_user_code = True  # no hook runs user code: checkpoints may be written behind (checkpoint_writer)

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list[Any]] = Logs()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.epoch = []
        self.history = Logs()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class BaseLogger(Callback):
    """Accumulates the epoch means of batch metrics into the epoch logs.

    fastfit's `fit` does not add it (the engine already returns epoch means); it is here for code that
    drives a `CallbackList` itself. Writes, for each key of `params['metrics']` seen in the batch logs,
    `sum(value * size) / sum(size)` into the `on_epoch_end` logs.

    Arguments:
        stateful_metrics: names whose epoch value is the last batch value instead of the mean.
    """

    _runs_no_user_code = True  # no hook runs user code: checkpoints may be written behind (checkpoint_writer)

    def __init__(self, stateful_metrics: Iterable[str] | None = None) -> None:
        super().__init__()
        self.stateful_metrics = spellings(stateful_metrics or ())  # every alias of each name
        self.seen = 0
        self.totals: dict[str, Any] = {}

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seen = 0
        self.totals = {}

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        size = logs.get("size", 0)
        self.seen += size
        for key, value in logs.items():
            if key in ("batch", "size"):
                continue
            if key in self.stateful_metrics:
                self.totals[key] = value
            else:
                self.totals[key] = self.totals.get(key, 0.0) + value * size

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        for key in getattr(self, "params", {}).get("metrics") or ():
            if key in self.totals:
                if key in self.stateful_metrics:
                    logs[key] = self.totals[key]
                elif self.seen:
                    logs[key] = self.totals[key] / self.seen
