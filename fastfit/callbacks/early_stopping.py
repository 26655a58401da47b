"""Callbacks that stop training: `EarlyStopping` (no more improvement) and `TerminateOnNaN`."""
from __future__ import annotations

import math
from typing import Any

from fastfit.callbacks.base import Callback
from fastfit.callbacks.monitor import check_monitor, higher_is_better, warn_missing
from fastfit.engine.logs import lookup


class TerminateOnNaN(Callback):
    """Stops training when a batch loss is NaN or infinite (prints `Batch N: Invalid loss, ...`).

    The interrupted epoch still ends normally (`on_epoch_end`, History), with its loss non-finite.
    """

    _runs_no_user_code = True  # no hook runs user code: checkpoints may be written behind (checkpoint_writer)

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class EarlyStopping(Callback):
    """Stops training when a monitored quantity has stopped improving.

    Arguments:
        monitor: logs key to watch (default `val_loss`).
        min_delta: an epoch improves only when better than the best by more than `abs(min_delta)`.
        patience: number of epochs without improvement after which training stops (0: the first one).
        verbose: 1 prints `Epoch 0000N: early stopping` and the restore message.
        mode: 'min', 'max' or 'auto' (max for names containing `acc`, starting with `fmeasure` or ending with
            `auc`).
        baseline: a value the monitor must beat; epochs that do not beat it count as not improving.
        restore_best_weights: at the end of training (however it ended) set the weights of the best epoch.
        start_from_epoch: (tf.keras) epochs to train before monitoring starts: epochs numbered below it
            (0-based, as `on_epoch_end` gets them) neither count against `patience` nor become the best.

    Attributes:
        stopped_epoch: 0-based epoch at which this callback stopped training (0 if it did not).
        best, best_epoch, wait: the state of the last run.

    Raises:
        ValueError: unknown `mode`, negative `patience` or `start_from_epoch`. TypeError: `monitor` not a string.
    """

    _runs_no_user_code = True  # no hook runs user code: checkpoints may be written behind (checkpoint_writer)

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0, verbose: int = 0,
                 mode: str = "auto", baseline: float | None = None, restore_best_weights: bool = False,
                 start_from_epoch: int = 0) -> None:
        super().__init__()
        self.monitor = check_monitor(monitor, "EarlyStopping")
        for name, value in (("patience", patience), ("start_from_epoch", start_from_epoch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"EarlyStopping: `{name}` must be an int >= 0, got {value!r}")
        self.patience = patience
        self.start_from_epoch = start_from_epoch
        self.verbose = verbose
        self.min_delta = abs(float(min_delta))
        self.baseline = None if baseline is None else float(baseline)
        self.restore_best_weights = bool(restore_best_weights)
        self.mode = mode
        self._higher = higher_is_better(mode, monitor, "EarlyStopping")
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = -math.inf if self._higher else math.inf
        self.best_weights = None
        self.best_epoch = 0

    def _improves(self, current, reference):
        if self._higher:
            return current - self.min_delta > reference
        return current + self.min_delta < reference

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # 'auto' follows the direction a compiled metric object declares (known once the model is set)
        self._higher = higher_is_better(self.mode, self.monitor, "EarlyStopping", self.model)
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        current = lookup(logs, self.monitor)
        if current is None:
            warn_missing(f"Early stopping conditioned on metric `{self.monitor}` which is not available.", logs)
            return
        if epoch < self.start_from_epoch:  # warm-up: not monitored yet
            return
        if self.restore_best_weights and self.best_weights is None:
            # The first monitored epoch: there is always something to restore, even if nothing improves.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        improved = self._improves(current, self.best)
        if improved:
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
        if improved and (self.baseline is None or self._improves(current, self.baseline)):
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print("Epoch %05d: early stopping" % (self.stopped_epoch + 1))
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)
