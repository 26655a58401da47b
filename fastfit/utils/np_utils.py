"""Keras 2's `keras.utils.np_utils`: `to_categorical` and `normalize` (the same functions as `fastfit.utils`)."""
from fastfit.utils import normalize, to_categorical

__all__ = ["normalize", "to_categorical"]
