"""Keras 2 callbacks: `Callback`, `CallbackList` and every built-in callback (see docs/callbacks.md)."""
from fastfit.callbacks.backup import BackupAndRestore
from fastfit.callbacks.base import Callback
from fastfit.callbacks.callback_list import CallbackList
from fastfit.callbacks.checkpoint import ModelCheckpoint
from fastfit.callbacks.csv_logger import CSVLogger
from fastfit.callbacks.early_stopping import EarlyStopping, TerminateOnNaN
from fastfit.callbacks.history import BaseLogger, History
from fastfit.callbacks.hooks import BatchHook, make_batch_hook
from fastfit.callbacks.lambda_callback import LambdaCallback
from fastfit.callbacks.lr import LearningRateScheduler, ReduceLROnPlateau
from fastfit.callbacks.progbar import ProgbarLogger
from fastfit.callbacks.remote import RemoteMonitor
from fastfit.callbacks.tensorboard import TensorBoard

__all__ = ["Callback", "CallbackList", "BaseLogger", "TerminateOnNaN", "ProgbarLogger", "History",
           "ModelCheckpoint", "EarlyStopping", "RemoteMonitor", "LearningRateScheduler", "TensorBoard",
           "ReduceLROnPlateau", "CSVLogger", "LambdaCallback", "BatchHook", "make_batch_hook", "BackupAndRestore"]
