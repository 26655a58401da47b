"""Keras 2 callbacks: `Callback`, `CallbackList` and every built-in callback (see docs/callbacks.md)."""
from fastfit.callbacks.base import Callback, CallbackList
from fastfit.callbacks.history import BaseLogger, History
from fastfit.callbacks.hooks import BatchHook, make_batch_hook
from fastfit.callbacks.progbar import ProgbarLogger

__all__ = ["Callback", "CallbackList", "BaseLogger", "History", "ProgbarLogger", "BatchHook", "make_batch_hook"]
