"""Saving and loading models and weights in the Keras 2 HDF5 layout (see docs/saving.md)."""
from fastfit.saving.model_file import load_model, load_weights, save_model, save_weights

__all__ = ["save_model", "load_model", "save_weights", "load_weights"]
