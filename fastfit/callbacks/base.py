"""`Callback`, the base class of every callback (`callback_list.CallbackList` calls a list of them in order).

Keras 2.2 semantics, with these fastfit decisions (docs/callbacks.md): every hook receives a dict, the
`on_train_batch_*` hooks forward positionally to the legacy `on_batch_*` ones, and whether a callback wants
batch hooks is decided per *instance* (see `batch_hooks_needed`), so the engine only comes back into Python
for batch boundaries somebody listens to.
"""
from __future__ import annotations

from typing import Any


_BATCH_HOOKS = {
    "train": (("on_train_batch_begin", "on_batch_begin"), ("on_train_batch_end", "on_batch_end")),
    "test": (("on_test_batch_begin",), ("on_test_batch_end",)),
    "predict": (("on_predict_batch_begin",), ("on_predict_batch_end",)),
}


def check_hook_mode(mode: str) -> str:
    """Return `mode` if it is 'train', 'test' or 'predict'; else raise ValueError."""
    if mode not in _BATCH_HOOKS:
        raise ValueError(f"mode must be one of {sorted(_BATCH_HOOKS)}, got {mode!r}")
    return mode


def overrides(callback: object, name: str, base: type) -> bool:
    """True when `callback.<name>` is not the function `base` defines for it.

    Looks at the attribute found on the *instance*: a function stored on the instance (LambdaCallback,
    `cb.on_batch_end = f`, a wrapper installed in `__init__`) has no `__func__` and counts as an override.
    """
    method = getattr(callback, name, None)
    return getattr(method, "__func__", None) is not getattr(base, name, None)


class Callback:
    """Abstract base class of callbacks.

    Attributes:
        model: the model being trained (set by `set_model`), `None` before.
        params: dict of run parameters (set by `set_params`; absent before).
        validation_data: `[x_val, y_val]` during a `fit` with validation, else `None`.

    Every hook takes `logs`, a dict (never `None` when called by fastfit). Override any subset.
    """

    # Class-level defaults, so subclasses that skip `Callback.__init__` still have them.
    model: Any = None  # the Model being trained, set by `fit` through `set_model`
    validation_data: Any = None

    def __init__(self) -> None:
        self.model = None
        self.validation_data = None

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def set_model(self, model: Any) -> None:
        self.model = model

    # Keras 0.x private spellings.
    def _set_params(self, params):
        self.set_params(params)

    def _set_model(self, model):
        self.set_model(model)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # Positional on purpose: LambdaCallback functions may name their second parameter anything.
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.on_batch_end(batch, logs)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_predict_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def batch_hooks_needed(self, mode: str) -> tuple[bool, bool]:
        """Return `(begin, end)`: whether this instance implements the batch begin/end hooks of `mode`.

        The default looks for overrides on the instance. Built-ins that only sometimes need batch hooks
        (ProgbarLogger, TensorBoard, ModelCheckpoint) refine it.
        """
        begin_names, end_names = _BATCH_HOOKS[check_hook_mode(mode)]
        return (any(overrides(self, name, Callback) for name in begin_names),
                any(overrides(self, name, Callback) for name in end_names))

    # tf.keras spellings of the same question.
    def _implements_train_batch_hooks(self):
        return any(self.batch_hooks_needed("train"))

    def _implements_test_batch_hooks(self):
        return any(self.batch_hooks_needed("test"))

    def _implements_predict_batch_hooks(self):
        return any(self.batch_hooks_needed("predict"))

    _supports_tf_logs = False


def batch_hooks_needed(callback: Callback, mode: str) -> tuple[bool, bool]:
    """`callback.batch_hooks_needed(mode)`, also for subclasses that replaced it with something odd."""
    needed = getattr(callback, "batch_hooks_needed", None)
    if needed is None:
        return Callback.batch_hooks_needed(callback, mode)
    begin, end = needed(mode)
    return bool(begin), bool(end)
