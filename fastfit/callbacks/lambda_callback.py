"""`LambdaCallback`: a callback built from plain functions."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastfit.callbacks.base import Callback

_HOOKS = frozenset(name for name in vars(Callback) if name.startswith("on_"))


class LambdaCallback(Callback):
    """Callback made of functions given as arguments, called positionally:

    `on_epoch_begin(epoch, logs)`, `on_epoch_end(epoch, logs)`, `on_batch_begin(batch, logs)`,
    `on_batch_end(batch, logs)`, `on_train_begin(logs)`, `on_train_end(logs)`; any other hook by keyword
    (`on_test_end=f`, `on_train_batch_end=f`, `on_predict_batch_end=f`, ...).

    The functions are stored on the instance, so they are what the training loop calls and what it checks
    when deciding whether batch hooks are needed (a LambdaCallback without batch functions costs nothing per
    batch).

    Raises:
        TypeError: an argument is not callable, or a keyword is not a callback hook name.
    """

    def __init__(self, on_epoch_begin: Callable[..., Any] | None = None, on_epoch_end: Callable[..., Any] | None = None,
                 on_batch_begin: Callable[..., Any] | None = None, on_batch_end: Callable[..., Any] | None = None,
                 on_train_begin: Callable[..., Any] | None = None, on_train_end: Callable[..., Any] | None = None,
                 **kwargs: Callable[..., Any] | None) -> None:
        super().__init__()
        unknown = sorted(set(kwargs) - _HOOKS)
        if unknown:
            raise TypeError(f"LambdaCallback: unknown hook names {unknown}; valid: {sorted(_HOOKS)}")
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_batch_begin=on_batch_begin,
                     on_batch_end=on_batch_end, on_train_begin=on_train_begin, on_train_end=on_train_end,
                     **kwargs)
        for name, function in given.items():
            if function is None:
                continue  # keep the base-class no-op (and its "not implemented" status)
            if not callable(function):
                raise TypeError(f"LambdaCallback: `{name}` must be callable or None, got "
                                f"{type(function).__name__} {function!r}")
            setattr(self, name, function)
