"""Saving and loading models and weights in the Keras 2 HDF5 layout (see docs/saving.md)."""
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported on first use (below): `fit` uses `checkpoint_writer`, which must not import h5py
    from fastfit.saving.model_file import load_model, load_weights, save_model, save_weights

__all__ = ["save_model", "load_model", "save_weights", "load_weights"]


def __getattr__(name):
    if name in __all__:
        from fastfit.saving import model_file
        return getattr(model_file, name)
    raise AttributeError(f"module 'fastfit.saving' has no attribute {name!r}")
