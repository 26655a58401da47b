"""What `Model.fit` and the streamed loops (`fastfit.engine.streaming`) share around the engine calls: the
checked `verbose`, the epochs that validate, where training resumes, the epoch logs from the engine's sums.

It imports no callbacks, saving or model module, so both loops can use it without an import cycle.
"""
import numpy as np

from fastfit.engine import data
from fastfit.engine.logs import Logs


def resume_point(cbks, initial_epoch):
    """Where training resumes: a callback such as BackupAndRestore may set `resume_point = (epoch, batches
    done)` in `on_train_begin`; otherwise at `initial_epoch`."""
    for cb in cbks:
        point = getattr(cb, "resume_point", None)
        if point is not None and point[0] >= initial_epoch:
            return int(point[0]), int(point[1])
    return initial_epoch, 0


def logs_from_sums(readout, sums, metric_pass=None):
    """The epoch logs (a `Logs`, so every alias of a key answers) from the engine's sums and counts (see
    `Readout`) and the custom metrics of `metric_pass`."""
    native = readout.epoch_values(sums)
    if metric_pass is not None:
        return metric_pass.epoch_logs(native)
    return Logs(native)


def check_verbose(verbose):
    if isinstance(verbose, str) and verbose == "auto":  # tf.keras: 'auto' is 1 outside distributed training
        return 1
    if isinstance(verbose, bool):
        return int(verbose)
    if not isinstance(verbose, (int, np.integer)) or verbose not in (0, 1, 2):
        raise ValueError(f"`verbose` must be 0, 1 or 2 (or 'auto'), got {verbose!r}")
    return int(verbose)


def check_epoch_arguments(epochs, initial_epoch, verbose, shuffle, validation_freq):
    """The checked `(epochs, initial_epoch, verbose, validation_epochs)` of a fit over streamed data (the
    `shuffle` argument is only checked: True, False or 'batch')."""
    epochs = data.check_non_negative_int(epochs, "epochs")
    initial_epoch = data.check_non_negative_int(initial_epoch, "initial_epoch")
    verbose = check_verbose(verbose)
    if shuffle not in (True, False, "batch"):
        raise ValueError(f"`shuffle` must be True, False or 'batch', got {shuffle!r}")
    return epochs, initial_epoch, verbose, validation_epochs(validation_freq)


def validation_epochs(validation_freq):
    """The set of 1-based epochs that validate, as a container supporting `in`."""
    if isinstance(validation_freq, (int, np.integer)) and not isinstance(validation_freq, bool):
        if validation_freq < 1:
            raise ValueError("`validation_freq` must be a positive integer or a list of epochs, got "
                             f"{validation_freq!r}")
        return EveryNth(int(validation_freq))
    if isinstance(validation_freq, (list, tuple, set)):
        return set(int(e) for e in validation_freq)
    raise ValueError(f"`validation_freq` must be a positive integer or a list of epochs, got {validation_freq!r}")


class EveryNth:
    def __init__(self, n):
        self.n = n

    def __contains__(self, epoch):
        return epoch % self.n == 0
