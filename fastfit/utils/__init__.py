"""Utilities: `to_categorical`, `normalize` (also as `fastfit.utils.np_utils`), `Sequence`, `HDF5Matrix`,
`set_random_seed`, `plot_history`."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from fastfit.backend import set_random_seed
from fastfit.utils import np_utils
from fastfit.utils.data_utils import Sequence
from fastfit.utils.hdf5_matrix import HDF5Matrix
from fastfit.utils.np_utils import normalize, to_categorical

if TYPE_CHECKING:
    from fastfit.callbacks import History


def plot_history(history_or_csv_path: History | dict[str, list[float]] | str | os.PathLike,
                 path: str | os.PathLike) -> str | os.PathLike:
    """Write a PNG of loss and metrics per epoch (train against validation). Needs `fastfit[plot]`."""
    from fastfit.utils.plotting import plot_history as _plot
    return _plot(history_or_csv_path, path)


__all__ = ["to_categorical", "normalize", "np_utils", "Sequence", "HDF5Matrix", "set_random_seed", "plot_history"]
