"""The backup file of `fastfit.callbacks.BackupAndRestore`: a model file plus the training position."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from fastfit.saving import (
    attributes,
    config_limits,
    files,
    model_file,
    optimizer_state,
    snapshot,
    weights,
)

if TYPE_CHECKING:
    from fastfit._types import PathLike
    from fastfit.engine.training import Model

WHAT = "backup file"


def save(model: Model, path: PathLike, epoch: int, batch: int) -> None:
    """Atomically write `model` (weights, optimizer state, seeds) and the position `(epoch, batch)`.

    Arguments:
        epoch: the epoch (0-based) training continues with; batch: batches of it already done.
    """
    files.write_snapshot(path, backup_snapshot(model, epoch, batch, copy=False), True, WHAT)


def backup_snapshot(model: Model, epoch: int, batch: int, copy: bool = True) -> snapshot.Snapshot:
    """The content of a backup file, for `files.write_snapshot`; `copy`: capture the arrays as they are now."""
    content = snapshot.Snapshot(copy)
    model_file.write_model(content, model, include_optimizer=True)
    attributes.write_json(content.attrs, "fastfit_backup", {"epoch": int(epoch), "batch": int(batch)})
    return content


def restore(model: Model, path: PathLike) -> tuple[int, int]:
    """Load the backup at `path` into the compiled `model` (in place).

    Returns:
        `(epoch, batch)`: where training continues.

    Raises:
        ValueError: the file is not a backup, is corrupted, or does not fit the model (different layers or
            shapes: delete the backup folder to start afresh).
    """
    where = f"BackupAndRestore: backup '{path}'"
    with files.reading(path, "BackupAndRestore") as contents:
        position = config_limits.parse(contents.attrs, "fastfit_backup", where)
        if not isinstance(position, dict) or "epoch" not in position:
            raise ValueError(f"{where} has no training position; it is not a BackupAndRestore file")
        epoch, batch = position["epoch"], position.get("batch", 0)
        if any(isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < 1 << 53 for n in (epoch, batch)):
            raise ValueError(f"{where}: its training position {position!r} is not a pair of counts")
        try:
            weights.assign(model, weights.read_layers(contents.groups.get("model_weights"), where), contents.read,
                           where=where)
        except ValueError as error:
            raise ValueError(f"{error}. The backup was written for another model: delete the backup folder to "
                             "start training afresh") from None
        model_file.restore_fastfit_state(model, config_limits.parse(contents.attrs, "fastfit_state", where), where)
        saved_state = optimizer_state.read(contents, where)
        if saved_state is not None and model.optimizer is not None:
            optimizer_state.restore(model, saved_state, contents.read, where)
            rate = _saved_learning_rate(config_limits.parse(contents.attrs, "training_config", where))
            if rate is not None:
                model.optimizer.lr = rate  # schedulers may have changed it before the interruption
    return int(epoch), int(batch)


def _saved_learning_rate(training_config):
    """training_config['optimizer_config']['config']['learning_rate'] if it is a finite number, else None."""
    value = training_config
    for key in ("optimizer_config", "config", "learning_rate"):
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value
