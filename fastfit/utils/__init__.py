"""Utilities: `to_categorical`, `normalize` (also as `fastfit.utils.np_utils`), `Sequence`, `set_random_seed`,
`plot_history`."""
from fastfit.backend import set_random_seed
from fastfit.utils import np_utils
from fastfit.utils.np_utils import normalize, to_categorical


class Sequence:
    """The Keras `Sequence` base class (`__getitem__` returns batch `index`, `__len__` the batch count).

    Subclasses can be defined, but fastfit does not train from them yet (generators and streaming are
    planned): `fit`/`evaluate`/`predict` raise a TypeError when given one.
    """

    def __getitem__(self, index):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError

    def on_epoch_end(self):
        """Called at the end of every epoch."""


def plot_history(history_or_csv_path, path):
    """Write a PNG of loss and metrics per epoch (train against validation). Needs `fastfit[plot]`."""
    from fastfit.utils.plotting import plot_history as _plot
    return _plot(history_or_csv_path, path)


__all__ = ["to_categorical", "normalize", "np_utils", "Sequence", "set_random_seed", "plot_history"]
