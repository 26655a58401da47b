"""Saving and loading models and weights in the Keras 2 HDF5 layout (see docs/saving.md).

`save_model`, `save_weights`, `load_weights` come from `model_file` (the file format), `load_model` from
`loading` (which builds the model class a file names). They are looked up on first use: `fit` imports
`fastfit.saving.checkpoint_writer`, and that must not import h5py.
"""
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastfit.saving.loading import load_model
    from fastfit.saving.model_file import load_weights, save_model, save_weights

__all__ = ["save_model", "load_model", "save_weights", "load_weights"]


def __getattr__(name):
    if name == "load_model":
        from fastfit.saving import loading
        return loading.load_model
    if name in __all__:
        from fastfit.saving import model_file
        return getattr(model_file, name)
    raise AttributeError(f"module 'fastfit.saving' has no attribute {name!r}")
