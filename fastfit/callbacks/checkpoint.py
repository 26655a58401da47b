"""`ModelCheckpoint`: save the model (or its weights) every epoch, every N batches, or when it improves."""
import math
import numbers
import os
import warnings
from typing import Any, Literal

from fastfit.callbacks.base import Callback, check_hook_mode, overrides
from fastfit.callbacks.monitor import check_monitor, higher_is_better
from fastfit.engine.logs import Logs, lookup
from fastfit.saving.checkpoint_writer import CheckpointWriter


class ModelCheckpoint(Callback):
    """Save the model after every epoch (or every `save_freq` batches).

    `filepath` may hold `str.format` fields filled with `epoch` (1-based) and the keys of the logs, e.g.
    `weights.{epoch:02d}-{val_loss:.2f}.hdf5` (any alias of a metric name works: `{val_acc}` after
    `metrics=['accuracy']`); with a batch `save_freq`, `batch` (1-based, within the epoch)
    is available too. A missing folder of `filepath` is created. Files hold what `model.save` /
    `model.save_weights` write and are atomic (a crash never leaves a half-written file).

    When the hook returns, the file is this save's, complete, as in Keras, wherever user code could look
    at it: when the hook is called outside `fit`, or when any callback of the `fit` is user code (a
    LambdaCallback, a user subclass). Only when every callback of the `fit` is one of fastfit's built-ins
    that run no user code may the file still be being written while training goes on; it is then complete
    before the next save, any read or save of the same path, and the end of `fit` (the rule:
    `fastfit.saving.checkpoint_writer`, docs/callbacks.md). A write's error names the file. A model class
    that overrides `save` / `save_weights` is saved by calling them.

    Arguments:
        filepath: path of the file to write (str or path-like).
        monitor: logs key compared when `save_best_only` (default `val_loss`).
        verbose: 1 prints a line per save/skip decision.
        save_best_only: only write when the monitored value improved on the best seen by this instance.
        save_weights_only: write `model.save_weights(path)` instead of the full model.
        mode: 'auto', 'min' or 'max': which direction of `monitor` is better.
        period: check every `period` epochs (with `save_best_only`, better epochs in between are not seen,
            as in Keras 2).
        save_freq: 'epoch' (use `period`) or an int N > 0: save every N training batches instead.
        initial_value_threshold: (tf.keras) the starting `best` value: with `save_best_only`, nothing is saved
            until the monitored value beats it.
        options: (tf.keras `tf.train.CheckpointOptions`) only None.

    Raises:
        ValueError: unknown `mode`, bad `period` or `save_freq`. TypeError: bad `filepath` or `monitor`.
        KeyError (while training): `filepath` names a key absent from the logs.
    """

    _runs_no_user_code = True  # no hook runs user code: checkpoints may be written behind (checkpoint_writer)

    def __init__(self, filepath: str | os.PathLike[str], monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False, mode: str = "auto", period: int = 1,
                 save_freq: Literal["epoch"] | int = "epoch", options: None = None,
                 initial_value_threshold: float | None = None) -> None:
        super().__init__()
        try:
            self.filepath = os.fspath(filepath)
        except TypeError:
            raise TypeError(f"ModelCheckpoint: `filepath` must be a str or path-like, got "
                            f"{type(filepath).__name__} {filepath!r}") from None
        self.monitor = check_monitor(monitor, "ModelCheckpoint")
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.mode = mode
        self._higher = higher_is_better(mode, monitor, "ModelCheckpoint")
        self.best = -math.inf if self._higher else math.inf
        if initial_value_threshold is not None:
            if isinstance(initial_value_threshold, bool) or not isinstance(initial_value_threshold, numbers.Real):
                raise TypeError(f"ModelCheckpoint: `initial_value_threshold` must be a number or None, got "
                                f"{initial_value_threshold!r}")
            self.best = float(initial_value_threshold)
        if options is not None:
            raise ValueError(f"ModelCheckpoint: `options` ({options!r}) are TensorFlow checkpoint options, which "
                             "fastfit's HDF5 files do not use; remove the argument")
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ValueError(f"ModelCheckpoint: `period` must be an int >= 1, got {period!r}")
        self.period = period
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or save_freq < 1):
            raise ValueError(f"ModelCheckpoint: `save_freq` must be 'epoch' or an int >= 1 (batches), "
                             f"got {save_freq!r}")
        self.save_freq = save_freq
        self.epochs_since_last_save = 0
        self._batches_since_save = 0
        self._epoch = 0
        # No `{}` fields: the path is the same every time (a lone brace still goes through format's error).
        self._fixed_path = "{" not in self.filepath and "}" not in self.filepath
        self._writer = CheckpointWriter()

    def batch_hooks_needed(self, mode: str) -> tuple[bool, bool]:
        begin, end = super().batch_hooks_needed(check_hook_mode(mode))
        own = not (overrides(self, "on_batch_end", ModelCheckpoint)
                   or overrides(self, "on_train_batch_end", ModelCheckpoint))
        if mode == "train" and own:
            end = self.save_freq != "epoch"
        return begin, end

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # 'auto' follows the direction a compiled metric object declares (known once the model is set); the
        # best value carries over between fits unless that direction changed it
        higher = higher_is_better(self.mode, self.monitor, "ModelCheckpoint", self.model)
        if higher != self._higher:
            self._higher = higher
            self.best = -math.inf if higher else math.inf

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._writer.wait()  # a checkpoint still being written: complete, or its error raised, here

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            logs = {key: value for key, value in (logs or {}).items() if key not in ("batch", "size")}
            self._checkpoint(self._epoch, logs, batch=batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.save_freq != "epoch":
            return
        self.epochs_since_last_save += 1
        if self.epochs_since_last_save < self.period:
            return
        self.epochs_since_last_save = 0
        self._checkpoint(epoch, logs or {})

    def _format_path(self, epoch, logs, batch):
        if self._fixed_path:
            return self.filepath
        fields = Logs(logs)  # `{val_acc}` finds `val_accuracy` (and the reverse)
        fields["epoch"] = epoch + 1
        if batch is not None:
            fields["batch"] = batch
        try:
            return self.filepath.format_map(fields)
        except KeyError as exc:
            raise KeyError(f"ModelCheckpoint: filepath {self.filepath!r} needs the key {exc.args[0]!r}, which "
                           f"is not in the logs (available: {', '.join(map(str, fields))})") from None
        except (IndexError, ValueError) as exc:
            if isinstance(exc, ValueError) and "positional" not in str(exc):
                raise
            raise KeyError(f"ModelCheckpoint: filepath {self.filepath!r} has a positional field `{{}}`; use "
                           f"named fields such as {{epoch}} or logs keys") from None

    def _checkpoint(self, epoch, logs, batch=None):
        path = self._format_path(epoch, logs, batch)
        where = "Epoch %05d" % (epoch + 1) + ("" if batch is None else f", batch {batch}") if self.verbose > 0 else ""
        if self.save_best_only:
            current = lookup(logs, self.monitor)
            if current is None:
                warnings.warn(f"Can save best model only with {self.monitor} available, skipping. Available "
                              f"metrics are: {','.join(map(str, logs)) or '(none)'}", RuntimeWarning,
                              stacklevel=3)
                return
            better = current > self.best if self._higher else current < self.best
            if not better:
                if self.verbose > 0:
                    print(f"\n{where}: {self.monitor} did not improve from {self.best:0.5f}")
                return
            if self.verbose > 0:
                print(f"\n{where}: {self.monitor} improved from {self.best:0.5f} to {current:0.5f}, "
                      f"saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"\n{where}: saving model to {path}")
        self._save(path)

    def _save(self, path):
        self._writer.write_model(self.model, path, self.save_weights_only)
