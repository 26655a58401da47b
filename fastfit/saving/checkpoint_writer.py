"""The checkpoint writer: what `ModelCheckpoint`, `BackupAndRestore` and `fit` use of `fastfit.saving`.

Interface:
    `CheckpointWriter`: `write_model(model, path, weights_only)` (what `model.save` / `model.save_weights`
        write), `write_backup(model, path, epoch, batch)` (a BackupAndRestore file), `wait()`.
    `during_fit(callbacks)`: the context `fit` runs its callbacks in.
    `wait_for(path)`: block until no write of `path` is pending.
    `restore_backup(model, path)`: load a BackupAndRestore file into `model`, return its position.

When a file is complete (docs/callbacks.md), decided here and nowhere else: a write may still be running
when the hook that asked for it returns ("written behind") only when nothing but fastfit's own code can run
before somebody waits for it, that is when

* it is made inside `fit` (`during_fit`, on the thread running that `fit`),
* every callback of that `fit` is one of fastfit's built-ins that run no user code (`_runs_no_user_code`:
  the exact class, so a user subclass counts as user code; no hook replaced on the instance),
* the model runs no user code during that `fit` (no custom metrics), and
* it is not the writer's first write in that `fit` (written at once, so an unwritable folder or a full disk
  stops training at the first save, in the hook that saves).

Every other write is complete, under its final name, when `write_model` / `write_backup` returns. A write
behind is complete before the same writer writes again or `wait`s, before any read or save of the same path
(`wait_for`, called by `files`), and when `fit` ends, normally or by an exception (`during_fit`'s exit). Its
error is raised by that next `write_*` or `wait`, or when `fit` ends; the error names the file.
"""
import contextlib
import os
import threading

from fastfit.saving import write_behind
from fastfit.utils import io_utils

# The modules that write files (they import h5py), imported by the first CheckpointWriter: importing fastfit
# (or running `fit`) must not import h5py, and the per-epoch path runs no import statement.
backup_file = files = image = model_file = None


def _import_writers():
    global backup_file, files, image, model_file
    from fastfit.saving import backup_file, files, image, model_file


_fit = threading.local()  # .scope: the `_FitScope` of the `fit` running on this thread, if any


def wait_for(path):
    """Block until no write of `path` is pending (its error, if any, stays with its writer)."""
    write_behind.wait_for(os.fspath(path))


def restore_backup(model, path):
    """Load the weights and optimizer state of the BackupAndRestore file `path` into `model` (after waiting
    for a pending write of it); return the training position `(epoch, batch)` it was written at."""
    wait_for(path)
    if backup_file is None:
        _import_writers()
    return backup_file.restore(model, path)


class _FitScope:
    """One `fit`: whether its writes may go behind (the rule above), and the writers that wrote in it."""

    def __init__(self, behind_allowed):
        self.behind_allowed = behind_allowed
        self.writers = []


@contextlib.contextmanager
def during_fit(callbacks, runs_user_code=False):
    """Run `fit`'s callbacks in this context: it applies the rule above to `callbacks` (all of the `fit`'s)
    and to the model (`runs_user_code`: it calls user functions during the fit, such as custom metrics),
    and on exit waits for every write made in it and flushes each writer's last file to disk.

    Raises (on a normal exit): the error of a write that failed and was not reported yet. When the body
    raises, that exception goes on, with a write's error added as a note.
    """
    scope = _FitScope(not runs_user_code and all(_runs_no_user_code(callback) for callback in callbacks))
    outer = getattr(_fit, "scope", None)
    _fit.scope = scope
    try:
        yield
    except BaseException as error:
        _fit.scope = outer
        for writer in scope.writers:
            failure = writer._end_fit()
            if failure is not None:
                error.add_note(f"A checkpoint written during this fit also failed: {failure}")
        raise
    _fit.scope = outer
    failures = [failure for failure in (writer._end_fit() for writer in scope.writers) if failure is not None]
    if failures:
        raise failures[0]


def _runs_no_user_code(callback):
    """True for an instance of a fastfit built-in whose hooks never run user code (its class says so in its
    own body: a subclass does not inherit it) and whose hooks were not replaced on the instance, unless by
    the hooks of another such callback."""
    if not vars(type(callback)).get("_runs_no_user_code", False):
        return False
    for name, value in vars(callback).items():
        if name.startswith("on_"):
            owner = getattr(value, "__self__", None)
            if owner is None or owner is callback or not _runs_no_user_code(owner):
                return False
    return True


class CheckpointWriter:
    """Writes one callback's checkpoints, one at a time, complete by the rule of this module.

    A fastfit model's file is captured (weights and optimizer state copied) when `write_*` is called, so a
    write behind holds the model as it was then. A model class that overrides `save` / `save_weights` is
    saved by calling them (always complete on return).
    """

    def __init__(self):
        if files is None:
            _import_writers()
        self._background = write_behind.BackgroundWriter()
        self._scope = None            # the `_FitScope` of the last write made inside a fit
        self._capture = None          # a model_file.Capture, made at the first write_model
        self._captured_class = None   # the model class last found to save with fastfit's own save
        self._flush = True            # io_utils.fsync_enabled(), read at the first write of each fit
        self._unflushed = None        # the last file the native writer wrote (no fsync) in this fit

    def write_model(self, model, path, weights_only=False):
        """Write what `model.save(path)` (`model.save_weights(path)` when `weights_only`) writes; a missing
        folder of `path` is created.

        Raises:
            OSError (naming the file): this write failed, or the previous one of this writer did.
        """
        method = "save_weights" if weights_only else "save"
        self.wait()  # also: the capture refills the buffer the previous write wrote (long done, normally)
        if type(model) is not self._captured_class and not _fastfit_saves(model, method):
            folder = os.path.dirname(path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            getattr(model, method)(path, overwrite=True)
            return
        self._captured_class = type(model)
        behind, scope = self._may_go_behind()
        if self._capture is None or self._capture.weights_only != bool(weights_only):
            self._capture = model_file.Capture(weights_only)
        content = self._capture(model)
        self._write(path, content, "weights file" if weights_only else "model file", behind, scope)

    def write_backup(self, model, path, epoch, batch):
        """Write a BackupAndRestore file: the model with its optimizer state and the position `(epoch, batch)`
        training continues from.

        Raises:
            OSError (naming the file): this write failed, or the previous one of this writer did.
        """
        self.wait()
        behind, scope = self._may_go_behind()
        content = backup_file.backup_snapshot(model, epoch, batch, copy=behind)
        self._write(path, content, backup_file.WHAT, behind, scope)

    def wait(self):
        """Block until this writer's last file is complete.

        Raises:
            the error of that write, if it failed (the previous file is then unchanged).
        """
        self._background.wait()

    # -- helpers ---------------------------------------------------------------------------------------------
    def _may_go_behind(self):
        """(whether the write now asked for may finish after it returns, the fit it is made in or None)."""
        scope = getattr(_fit, "scope", None)
        if scope is None:
            if self._capture is not None:
                self._capture.recheck()  # outside fit the model may change in any way between two writes
            return False, None
        if self._scope is not scope:  # the first write of this writer in this fit: complete on return
            self._scope, self._unflushed = scope, None
            scope.writers.append(self)
            self._flush = io_utils.fsync_enabled()
            if self._capture is not None:
                self._capture.recheck()  # the model may have changed in place since the last fit
            return False, scope
        return scope.behind_allowed, scope

    def _write(self, path, content, what, behind, scope):
        if scope is None:  # outside fit: as `model.save` writes it (fsynced), in this thread
            _write_file(path, content, what)
            return
        started = (files.start_image_write(path, content, what, self._flush)
                   if isinstance(content, image.FileImage) else None)
        self._unflushed = path if started is not None else None
        if started is None and not behind:
            _write_file(path, content, what)
            return
        self._background.submit(path, lambda: _write_file(path, content, what), started)
        if not behind:
            self._background.wait()

    def _end_fit(self):
        """The fit this writer wrote in ends: wait for its last write and flush the last file the native
        writer wrote to disk. Returns the write's error (reported here, once) or None."""
        self._scope = None
        path, self._unflushed = self._unflushed, None
        try:
            self._background.wait()
            if path is not None:
                files.flush_to_disk(path)  # the native writer does not wait for the disk; the fit's last file does
        except Exception as error:  # handed to `during_fit`, which raises it or notes it on fit's exception
            return error
        return None


def _write_file(path, content, what):
    """Write one checkpoint atomically, creating its folder if it is missing."""
    try:
        files.write_snapshot(path, content, True, what)
    except FileNotFoundError:
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(folder):
            raise
        os.makedirs(folder, exist_ok=True)
        files.write_snapshot(path, content, True, what)


def _fastfit_saves(model, method):
    """True when `model.<method>` is fastfit's own, so its file content can be captured (the model says so:
    `Model._saves_with_fastfit`; another object is saved by calling the method)."""
    saves_with_fastfit = getattr(model, "_saves_with_fastfit", None)
    return callable(saves_with_fastfit) and bool(saves_with_fastfit(method))
