"""Learning-rate callbacks: `LearningRateScheduler` (a schedule per epoch) and `ReduceLROnPlateau`.

Both read and write `model.optimizer.lr`; fastfit's optimizers expose it as a live attribute which the
engine re-reads after every hook, so a change applies from the next batch.
"""
from __future__ import annotations

import inspect
import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any, SupportsFloat

from fastfit.callbacks.base import Callback
from fastfit.callbacks.monitor import check_monitor, higher_is_better, warn_missing
from fastfit.engine.logs import lookup


def _optimizer_with_lr(model):
    optimizer = getattr(model, "optimizer", None)
    if not hasattr(optimizer, "lr"):
        raise ValueError('Optimizer must have a "lr" attribute.')
    return optimizer


def get_lr(model: Any) -> float:
    """The model's current learning rate as a Python float. Raises ValueError if there is none."""
    return float(_optimizer_with_lr(model).lr)


def set_lr(model: Any, value: SupportsFloat) -> None:
    """Set the model's learning rate (the optimizer validates it)."""
    _optimizer_with_lr(model).lr = float(value)


def _takes_lr(schedule):
    """True when `schedule` accepts two positional arguments (epoch, lr); None when it cannot be told."""
    try:
        parameters = inspect.signature(schedule).parameters.values()
    except (TypeError, ValueError):
        return None
    positional = 0
    for parameter in parameters:
        if parameter.kind is parameter.VAR_POSITIONAL:
            return True
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= 2


def _schedule_name(schedule):
    return getattr(schedule, "__qualname__", None) or getattr(schedule, "__name__", None) or repr(schedule)


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of every epoch from `schedule`.

    Arguments:
        schedule: `schedule(epoch)` or `schedule(epoch, lr)` returning the new rate (a real number); `epoch`
            is 0-based and absolute, `lr` the current rate as a float. The form is chosen from the signature,
            so errors raised inside the schedule reach you unchanged.
        verbose: 1 prints `Epoch 0000N: LearningRateScheduler setting learning rate to X.`

    Adds `lr` (the rate used in the epoch) to the epoch logs.

    Raises:
        TypeError: `schedule` is not callable.
        ValueError (during fit): the optimizer has no `lr`, or the schedule returned something that is not a
            real number (the message names the schedule and the value).
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: `schedule` must be callable, got "
                            f"{type(schedule).__name__} {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        self._two_args = _takes_lr(schedule)

    def _call_schedule(self, epoch, lr):
        if self._two_args is None:  # signature unknown (some builtins, C extensions): try the new form
            try:
                return self.schedule(epoch, lr)
            except TypeError:
                return self.schedule(epoch)
        return self.schedule(epoch, lr) if self._two_args else self.schedule(epoch)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        lr = get_lr(self.model)
        new = self._call_schedule(epoch, lr)
        if isinstance(new, bool) or not isinstance(new, numbers.Real):
            raise ValueError(f'The output of the "schedule" function {_schedule_name(self.schedule)} should be '
                             f"float, got {type(new).__name__} {new!r} at epoch {epoch}")
        set_lr(self.model, new)
        if self.verbose > 0:
            print("\nEpoch %05d: LearningRateScheduler setting learning rate to %s." % (epoch + 1, float(new)))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["lr"] = get_lr(self.model)


class ReduceLROnPlateau(Callback):
    """Reduces the learning rate when a monitored quantity has stopped improving.

    Arguments:
        monitor: logs key to watch (default `val_loss`).
        factor: new_lr = lr * factor (must be < 1).
        patience: epochs without improvement before reducing.
        verbose: 1 prints `Epoch 0000N: ReduceLROnPlateau reducing learning rate to X.`
        mode: 'auto', 'min' or 'max'.
        min_delta: an epoch improves when better than the best by more than `min_delta` (signed threshold).
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: lower bound of the rate. Nothing happens (no message) once the rate cannot decrease.
        epsilon: deprecated Keras 2.0 name of `min_delta` (warns).

    Adds `lr` (the rate used in the epoch, before any reduction) to the epoch logs.

    Raises:
        ValueError: `factor >= 1`, unknown `mode`. TypeError: an unknown keyword argument.
    """

    _runs_no_user_code = True  # no hook runs user code: checkpoints may be written behind (checkpoint_writer)

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, verbose: int = 0,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0,
                 **kwargs: Any) -> None:
        super().__init__()
        if "epsilon" in kwargs:
            min_delta = kwargs.pop("epsilon")
            warnings.warn("`epsilon` argument is deprecated and will be removed, use `min_delta` instead.",
                          UserWarning, stacklevel=2)
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unexpected keyword arguments {sorted(kwargs)}")
        self.monitor = check_monitor(monitor, "ReduceLROnPlateau")
        if not isinstance(factor, numbers.Real) or factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0 (got factor={factor!r})")
        self.factor: float = float(factor)
        self.patience: int = patience
        self.verbose: int = verbose
        self.mode: str = mode
        self.min_delta = float(min_delta)
        self.cooldown: int = cooldown
        self.min_lr: float = float(min_lr)
        self._higher: bool = higher_is_better(mode, monitor, "ReduceLROnPlateau")
        self._reset()

    def _reset(self):
        self.best = -math.inf if self._higher else math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _better(self, current):
        if self._higher:
            return current > self.best + self.min_delta
        return current < self.best - self.min_delta

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # 'auto' follows the direction a compiled metric object declares (known once the model is set)
        self._higher = higher_is_better(self.mode, self.monitor, "ReduceLROnPlateau", self.model)
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = {} if logs is None else logs
        lr = get_lr(self.model)
        logs["lr"] = lr
        current = lookup(logs, self.monitor)
        if current is None:
            warn_missing(f"Reduce LR on plateau conditioned on metric `{self.monitor}` which is not available.",
                         logs)
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(current):
            self.best = current
            self.wait = 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        new = max(lr * self.factor, self.min_lr)
        if new < lr:  # at min_lr the rate no longer changes: stay silent
            set_lr(self.model, new)
            if self.verbose > 0:
                print("\nEpoch %05d: ReduceLROnPlateau reducing learning rate to %s." % (epoch + 1, new))
            self.cooldown_counter = self.cooldown
            self.wait = 0
