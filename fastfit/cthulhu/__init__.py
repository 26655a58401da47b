"""The cthulhu names (maxpumperla/cthulhu, an April Fools' Keras skin), as plain aliases of fastfit objects.

`from fastfit.cthulhu import *` runs the cthulhu docs' examples. Each name *is* the fastfit object (so files
saved from a `Pile` hold `Sequential` and load either way); `summon`/`conjure` are `fit`/`compile`. Canonical
names come from the package's `names.py` (`Daoloth`, `Azatoth`, ...); from its generated docs only the
names with no package equivalent are added: `LumpCheckpoint` and `LuKthuCallback`.
"""
from fastfit.cthulhu import callbacks
from fastfit.cthulhu.callbacks import LumpCheckpoint, LuKthuCallback
from fastfit.layers import Activation, Dense, Dropout, Flatten, Input
from fastfit.models import Model, Sequential, load_model

Pile = Sequential
Lump = Model
Daoloth = Dense
Azatoth = Activation
Darkness = Dropout

__all__ = ["Pile", "Lump", "Daoloth", "Azatoth", "Darkness", "LumpCheckpoint", "LuKthuCallback", "Flatten",
           "Input", "load_model", "callbacks"]
