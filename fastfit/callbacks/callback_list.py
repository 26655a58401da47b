"""`CallbackList`: calls a list of callbacks in order, adding the default `History` and progress bar."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastfit.callbacks.base import Callback
from fastfit.callbacks.history import History
from fastfit.callbacks.progbar import ProgbarLogger


class CallbackList:
    """A list of callbacks called in order, all receiving the same `logs` dict.

    Arguments:
        callbacks: an iterable of `Callback` instances, or `None`.
        queue_length: accepted for Keras 2.2 compatibility (fastfit does not time hooks).
        add_history, add_progbar, model, **params: the tf.keras extras: append a `History` / a
            `ProgbarLogger(count_mode='steps')` unless the list already holds one, then `set_model(model)`
            and `set_params(params)` when given.

    Raises:
        TypeError: `callbacks` is not an iterable of `Callback` instances (the message names the item).
    """

    def __init__(self, callbacks: Iterable[Callback] | None = None, queue_length: int = 10,
                 add_history: bool = False, add_progbar: bool = False, model: Any = None, **params: Any) -> None:
        self.callbacks: list[Callback] = []
        self.queue_length = queue_length
        self.params: dict[str, Any] = {}
        self.model = None
        if callbacks is not None:
            if isinstance(callbacks, (Callback, str, bytes, dict)):
                raise TypeError(f"`callbacks` must be a list of Callback instances, got "
                                f"{type(callbacks).__name__} {callbacks!r}; wrap it in a list: callbacks=[...]")
            try:
                items = list(callbacks)
            except TypeError:
                raise TypeError(f"`callbacks` must be a list of Callback instances, got "
                                f"{type(callbacks).__name__} {callbacks!r}") from None
            for index, callback in enumerate(items):
                self.append(callback, index)
        self._add_defaults(add_history, add_progbar)
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    def _add_defaults(self, add_history, add_progbar):
        if add_progbar and not any(isinstance(cb, ProgbarLogger) for cb in self.callbacks):
            self.callbacks.append(ProgbarLogger(count_mode="steps"))
        if add_history and not any(isinstance(cb, History) for cb in self.callbacks):
            self.callbacks.append(History())

    def append(self, callback: Callback, index: int | None = None) -> None:
        """Add `callback` at the end. Raises TypeError when it is not a `Callback` instance."""
        if not isinstance(callback, Callback):
            which = "`callbacks` item" if index is None else f"`callbacks[{index}]`"
            hint = " (pass an instance, not the class)" if isinstance(callback, type) else ""
            raise TypeError(f"{which} must be a Callback instance{hint}, got {type(callback).__name__} "
                            f"{callback!r}")
        self.callbacks.append(callback)

    def __iter__(self) -> Iterator[Callback]:
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params
        for callback in self.callbacks:
            callback.set_params(params)

    def set_model(self, model: Any) -> None:
        self.model = model
        for callback in self.callbacks:
            callback.set_model(model)

    def set_validation_data(self, validation_data: Any) -> None:
        """Set `validation_data` (`[x_val, y_val]` or `None`) on every callback; call before `set_model`."""
        for callback in self.callbacks:
            callback.validation_data = validation_data

    def _call(self, name, logs, *head):
        logs = {} if logs is None else logs
        for callback in self.callbacks:
            getattr(callback, name)(*head, logs)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._call("on_train_begin", logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_epoch_begin", logs, epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_epoch_end", logs, epoch)

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_train_batch_begin", logs, batch)

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_train_batch_end", logs, batch)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_train_batch_begin", logs, batch)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_train_batch_end", logs, batch)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._call("on_test_begin", logs)

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        self._call("on_test_end", logs)

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_test_batch_begin", logs, batch)

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_test_batch_end", logs, batch)

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        self._call("on_predict_end", logs)

    def on_predict_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_predict_batch_begin", logs, batch)

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._call("on_predict_batch_end", logs, batch)
