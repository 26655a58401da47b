"""`ModelCheckpoint`: save the model (or its weights) every epoch, every N batches, or when it improves."""
import math
import numbers
import os
import warnings

from fastfit.callbacks.base import Callback, check_hook_mode, overrides
from fastfit.callbacks.monitor import check_monitor, higher_is_better
from fastfit.engine.logs import Logs, lookup

# fastfit.saving's modules, imported by the first ModelCheckpoint (importing fastfit should not import h5py;
# an import statement in the per-epoch path cost 10-20 us with cold caches).
files = image = model_file = write_behind = io_utils = None


def _import_saving():
    global files, image, model_file, write_behind, io_utils
    from fastfit.saving import files, image, model_file, write_behind
    from fastfit.utils import io_utils


class ModelCheckpoint(Callback):
    """Save the model after every epoch (or every `save_freq` batches).

    `filepath` may hold `str.format` fields filled with `epoch` (1-based) and the keys of the logs, e.g.
    `weights.{epoch:02d}-{val_loss:.2f}.hdf5` (any alias of a metric name works: `{val_acc}` after
    `metrics=['accuracy']`); with a batch `save_freq`, `batch` (1-based, within the epoch)
    is available too. A missing folder of `filepath` is created. Files hold what `model.save` /
    `model.save_weights` write and are atomic (a crash never leaves a half-written file).

    Write-behind: for fastfit models the callback copies the weights and optimizer state, and a background
    thread writes the file while training goes on (a small file: the native writer thread, which starts the
    data's writeback before the rename and does not wait for it; the last file of a fit is fsynced in
    `on_train_end`). The next save waits for the previous one,
    a failed background write raises its error at the next save or in `on_train_end`, and `on_train_end`
    waits, so every checkpoint is on disk when `fit` returns. The first checkpoint of a `fit` is on disk
    before the next epoch starts, so an unwritable folder, a folder in the way of the file or a full disk
    stops training at once. A model class that overrides `save` / `save_weights` is saved by calling
    them, synchronously.

    Arguments:
        filepath: path of the file to write (str or path-like).
        monitor: logs key compared when `save_best_only` (default `val_loss`).
        verbose: 1 prints a line per save/skip decision.
        save_best_only: only write when the monitored value improved on the best seen by this instance.
        save_weights_only: write `model.save_weights(path)` instead of the full model.
        mode: 'auto', 'min' or 'max': which direction of `monitor` is better.
        period: check every `period` epochs (with `save_best_only`, better epochs in between are not seen,
            as in Keras 2).
        save_freq: 'epoch' (use `period`) or an int N > 0: save every N training batches instead.
        initial_value_threshold: (tf.keras) the starting `best` value: with `save_best_only`, nothing is saved
            until the monitored value beats it.
        options: (tf.keras `tf.train.CheckpointOptions`) only None.

    Raises:
        ValueError: unknown `mode`, bad `period` or `save_freq`. TypeError: bad `filepath` or `monitor`.
        KeyError (while training): `filepath` names a key absent from the logs.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", period=1, save_freq="epoch", options=None, initial_value_threshold=None):
        super().__init__()
        try:
            self.filepath = os.fspath(filepath)
        except TypeError:
            raise TypeError(f"ModelCheckpoint: `filepath` must be a str or path-like, got "
                            f"{type(filepath).__name__} {filepath!r}") from None
        self.monitor = check_monitor(monitor, "ModelCheckpoint")
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.mode = mode
        self._higher = higher_is_better(mode, monitor, "ModelCheckpoint")
        self.best = -math.inf if self._higher else math.inf
        if initial_value_threshold is not None:
            if isinstance(initial_value_threshold, bool) or not isinstance(initial_value_threshold, numbers.Real):
                raise TypeError(f"ModelCheckpoint: `initial_value_threshold` must be a number or None, got "
                                f"{initial_value_threshold!r}")
            self.best = float(initial_value_threshold)
        if options is not None:
            raise ValueError(f"ModelCheckpoint: `options` ({options!r}) are TensorFlow checkpoint options, which "
                             "fastfit's HDF5 files do not use; remove the argument")
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ValueError(f"ModelCheckpoint: `period` must be an int >= 1, got {period!r}")
        self.period = period
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or save_freq < 1):
            raise ValueError(f"ModelCheckpoint: `save_freq` must be 'epoch' or an int >= 1 (batches), "
                             f"got {save_freq!r}")
        self.save_freq = save_freq
        self.epochs_since_last_save = 0
        self._batches_since_save = 0
        self._epoch = 0
        self._first_unchecked = None  # None: no save yet in this fit; True: the first one is not waited for
        # No `{}` fields: the path is the same every time (a lone brace still goes through format's error).
        self._fixed_path = "{" not in self.filepath and "}" not in self.filepath
        if write_behind is None:
            _import_saving()
        self._writer = write_behind.BackgroundWriter()
        self._captured_class = None  # the model class last found to save with fastfit's own save
        self._unflushed = None  # the last file, if the native writer wrote it (no fsync)
        self._flush = True
        self._capture = None  # a model_file.Capture, made at the first save

    def batch_hooks_needed(self, mode):
        begin, end = super().batch_hooks_needed(check_hook_mode(mode))
        own = not (overrides(self, "on_batch_end", ModelCheckpoint)
                   or overrides(self, "on_train_batch_end", ModelCheckpoint))
        if mode == "train" and own:
            end = self.save_freq != "epoch"
        return begin, end

    def on_train_begin(self, logs=None):
        # 'auto' follows the direction a compiled metric object declares (known once the model is set); the
        # best value carries over between fits unless that direction changed it
        higher = higher_is_better(self.mode, self.monitor, "ModelCheckpoint", self.model)
        if higher != self._higher:
            self._higher = higher
            self.best = -math.inf if higher else math.inf
        self._writer.wait()  # a previous fit that ended with an exception may still be writing
        self._first_unchecked = None
        self._flush = io_utils.fsync_enabled()  # FASTFIT_FSYNC, read once per fit
        if self._capture is not None:
            self._capture.recheck()  # the model may have changed in place between the fits

    def on_train_end(self, logs=None):
        self._writer.wait()
        path, self._unflushed = self._unflushed, None
        if path is not None:
            files.flush_to_disk(path)  # the native writer does not wait for the disk; the fit's last file does

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self._first_unchecked:
            self._first_unchecked = False
            self._writer.wait()

    def on_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            logs = {key: value for key, value in (logs or {}).items() if key not in ("batch", "size")}
            self._checkpoint(self._epoch, logs, batch=batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq != "epoch":
            return
        self.epochs_since_last_save += 1
        if self.epochs_since_last_save < self.period:
            return
        self.epochs_since_last_save = 0
        self._checkpoint(epoch, logs or {})

    def _format_path(self, epoch, logs, batch):
        if self._fixed_path:
            return self.filepath
        fields = Logs(logs)  # `{val_acc}` finds `val_accuracy` (and the reverse)
        fields["epoch"] = epoch + 1
        if batch is not None:
            fields["batch"] = batch
        try:
            return self.filepath.format_map(fields)
        except KeyError as exc:
            raise KeyError(f"ModelCheckpoint: filepath {self.filepath!r} needs the key {exc.args[0]!r}, which "
                           f"is not in the logs (available: {', '.join(map(str, fields))})") from None
        except (IndexError, ValueError) as exc:
            if isinstance(exc, ValueError) and "positional" not in str(exc):
                raise
            raise KeyError(f"ModelCheckpoint: filepath {self.filepath!r} has a positional field `{{}}`; use "
                           f"named fields such as {{epoch}} or logs keys") from None

    def _checkpoint(self, epoch, logs, batch=None):
        path = self._format_path(epoch, logs, batch)
        where = "Epoch %05d" % (epoch + 1) + ("" if batch is None else f", batch {batch}") if self.verbose > 0 else ""
        if self.save_best_only:
            current = lookup(logs, self.monitor)
            if current is None:
                warnings.warn(f"Can save best model only with {self.monitor} available, skipping. Available "
                              f"metrics are: {','.join(map(str, logs)) or '(none)'}", RuntimeWarning,
                              stacklevel=3)
                return
            better = current > self.best if self._higher else current < self.best
            if not better:
                if self.verbose > 0:
                    print(f"\n{where}: {self.monitor} did not improve from {self.best:0.5f}")
                return
            if self.verbose > 0:
                print(f"\n{where}: {self.monitor} improved from {self.best:0.5f} to {current:0.5f}, "
                      f"saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"\n{where}: saving model to {path}")
        self._save(path)

    def _save(self, path):
        method = "save_weights" if self.save_weights_only else "save"
        if type(self.model) is not self._captured_class and not _fastfit_saves(self.model, method):
            folder = os.path.dirname(path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            self._writer.wait()
            getattr(self.model, method)(path, overwrite=True)
            return
        self._captured_class = type(self.model)
        what = "weights file" if self.save_weights_only else "model file"
        if self._capture is None:
            self._capture = model_file.Capture(self.save_weights_only)
        self._writer.wait()  # the capture refills the buffer the previous write wrote (long done, normally)
        content = self._capture(self.model)
        # The target is checked by the write itself: a folder in the way fails it like a full disk does.
        started = (files.start_image_write(path, content, what, self._flush)
                   if isinstance(content, image.FileImage) else None)
        self._writer.submit(path, lambda: _write_file(path, content, what), started)
        self._unflushed = path if started is not None else None
        if self._first_unchecked is None:
            self._first_unchecked = True  # on_epoch_begin waits for it


def _write_file(path, content, what):
    """Write one checkpoint (in the writer thread), creating its folder if it is missing (as documented)."""
    try:
        files.write_snapshot(path, content, True, what)
    except FileNotFoundError:
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(folder):
            raise
        os.makedirs(folder, exist_ok=True)
        files.write_snapshot(path, content, True, what)


def _fastfit_saves(model, method):
    """True when `model.<method>` is fastfit's own, so its file content can be captured and written behind."""
    from fastfit.engine.training import Model
    return getattr(type(model), method, None) is getattr(Model, method)
