"""`cthulhu.callbacks`: every fastfit callback under its Keras name, plus the two cthulhu spellings."""
from fastfit.callbacks import *  # noqa: F401,F403  (re-export: this module is an alias namespace)
from fastfit.callbacks import LambdaCallback, ModelCheckpoint
from fastfit.callbacks import __all__ as _keras_names

LumpCheckpoint = ModelCheckpoint
LuKthuCallback = LambdaCallback

__all__ = list(_keras_names) + ["LumpCheckpoint", "LuKthuCallback"]
