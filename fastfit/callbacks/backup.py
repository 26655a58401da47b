"""`BackupAndRestore`: resume an interrupted `fit` where it stopped (tf.keras semantics).

Each backup is one HDF5 model file (weights, optimizer state, seeds) plus the training position, written
atomically to `<backup_dir>/backup.h5` by the checkpoint writer, by the same rule as `ModelCheckpoint`'s
files (complete when the hook returns unless no user code can look before it is waited for:
`fastfit.saving.checkpoint_writer`). When `fit` starts and a backup exists, the model gets the backed-up weights
and optimizer state and `fit` continues from the saved position, so rerunning a killed script ends with the
same weights as an uninterrupted run. At the end of a completed `fit` the backup is deleted.
"""
from __future__ import annotations

import os
from typing import Any, Literal

from fastfit.callbacks.base import Callback, check_hook_mode
from fastfit.saving import checkpoint_writer

BACKUP_FILE = "backup.h5"


class BackupAndRestore(Callback):
    """Back up the training state regularly and restore it when `fit` is run again after an interruption.

    Arguments:
        backup_dir: folder for the backup (created if missing). Use one folder per training run; it must not
            be shared by two runs at the same time.
        save_freq: 'epoch' (back up at every epoch end) or an int N > 0 (every N training batches; training
            then resumes in the middle of the epoch).
        delete_checkpoint: delete the backup when `fit` completes (all epochs, or stopped by a callback such as
            EarlyStopping); an interrupted `fit` (exception, Ctrl-C, kill) always keeps it.

    Attributes:
        resume_point: `(epoch, batches_done)` restored by `on_train_begin`, or None. `fit` starts at that epoch
            and skips the first `batches_done` batches of it.

    Raises:
        TypeError: `backup_dir` is not a path. ValueError: bad `save_freq`.
    """

    _runs_no_user_code = True  # no hook runs user code: checkpoints may be written behind (checkpoint_writer)

    def __init__(self, backup_dir: str | os.PathLike[str], save_freq: Literal["epoch"] | int = "epoch",
                 delete_checkpoint: bool = True) -> None:
        super().__init__()
        try:
            self.backup_dir = os.fspath(backup_dir)
        except TypeError:
            raise TypeError(f"BackupAndRestore: `backup_dir` must be a str or path-like, got "
                            f"{type(backup_dir).__name__} {backup_dir!r}") from None
        if not self.backup_dir:
            raise ValueError("BackupAndRestore: `backup_dir` must not be empty")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or save_freq < 1):
            raise ValueError(f"BackupAndRestore: `save_freq` must be 'epoch' or an int >= 1 (batches), "
                             f"got {save_freq!r}")
        self.save_freq = save_freq
        self.delete_checkpoint = bool(delete_checkpoint)
        self.resume_point: tuple[int, int] | None = None  # (epoch, batch) where `fit` resumes
        self._epoch = 0
        self._batch_offset = 0
        self._batches_since_save = 0
        self._last_epoch_done: int | None = None
        self._writer = checkpoint_writer.CheckpointWriter()

    @property
    def backup_path(self) -> str:
        return os.path.join(self.backup_dir, BACKUP_FILE)

    def batch_hooks_needed(self, mode: str) -> tuple[bool, bool]:
        return False, check_hook_mode(mode) == "train" and self.save_freq != "epoch"

    # -- hooks -----------------------------------------------------------------------------------------------
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        checkpoint_writer.wait_for(self.backup_path)  # another instance using the same folder may be writing
        os.makedirs(self.backup_dir, exist_ok=True)
        self.resume_point = None
        self._last_epoch_done = None
        self._batches_since_save = 0
        if os.path.exists(self.backup_path):
            epoch, batch = checkpoint_writer.restore_backup(self.model, self.backup_path)
            steps = (getattr(self, "params", None) or {}).get("steps")
            if steps and batch >= steps:
                epoch, batch = epoch + 1, 0
            self.resume_point = (epoch, batch)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        point = self.resume_point
        self._batch_offset = point[1] if point is not None and epoch == point[0] else 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._backup(self._epoch, self._batch_offset + batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._last_epoch_done = epoch
        if self.save_freq == "epoch":
            self._backup(epoch + 1, 0)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._writer.wait()  # the last backup must not land after its deletion
        if self.delete_checkpoint and self._completed() and os.path.exists(self.backup_path):
            os.remove(self.backup_path)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _backup(self, epoch, batch):
        self._writer.write_backup(self.model, self.backup_path, epoch, batch)

    def _completed(self):
        """True when fit ended normally: every epoch ran, or a callback stopped training."""
        if getattr(self.model, "stop_training", False):
            return True
        epochs = (getattr(self, "params", None) or {}).get("epochs")
        if epochs is None:
            return False
        done = self._last_epoch_done + 1 if self._last_epoch_done is not None else \
            (self.resume_point[0] if self.resume_point else 0)
        return done >= epochs
