"""Atomic file writes: every file fastfit writes appears whole or not at all.

A write goes to a temporary file in the target's folder (same file system, so the final `os.replace` is an
atomic rename), is flushed to disk with `fsync`, and is then moved over the target. If anything fails, or
the process is interrupted by an exception, the temporary file is removed and the previous file is left
untouched. A process killed outright (SIGKILL) can leave a hidden `.<name>.*.tmp` file behind, but never a
half-written target.

The folder itself is not fsynced: after a power cut it shows either the old complete file or the new
complete one, which is all atomicity needs, and it saves a second fsync per checkpoint. `FASTFIT_FSYNC=0`
skips the file fsync too, for scratch checkpoints on slow disks: files then stay atomic against crashes of
the process, not of the machine.
"""
import contextlib
import os
import shutil
import tempfile


def check_target(path, overwrite=True, what="file"):
    """Check that `path` may be written before any work is done.

    Arguments:
        path: str or path-like.
        overwrite: if False, an existing file is an error (fastfit never prompts on stdin).
        what: how error messages name the file ("model file", "weights file", ...).

    Returns:
        The path as a str.

    Raises:
        TypeError: `path` is not a str or path-like.
        FileExistsError: the file exists and `overwrite` is False.
        FileNotFoundError: the folder does not exist (it is not created).
        NotADirectoryError / IsADirectoryError: the folder is a file, or the target is a folder.
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"the {what} path must be a str or path-like, got {type(path).__name__} {path!r}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(folder):
        raise FileNotFoundError(2, f"Cannot write {what} '{path}': the folder '{folder}' does not exist", path)
    if not os.path.isdir(folder):
        raise NotADirectoryError(20, f"Cannot write {what} '{path}': '{folder}' is not a folder", path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, f"Cannot write {what} '{path}': it is a folder", path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(17, f"{what.capitalize()} '{path}' already exists and overwrite=False; pass "
                                  "overwrite=True to replace it", path)
    return path


@contextlib.contextmanager
def atomic_path(path, overwrite=True, what="file"):
    """Context manager yielding a temporary path to write; on success it replaces `path` atomically.

    Use it for libraries that want a file name (h5py): `with atomic_path('m.h5') as tmp: h5py.File(tmp, 'w')`.
    The caller must close the file before the block ends.

    Raises:
        see `check_target`; OSError (with the target path in the message) when the folder is not writable,
        the disk is full or the rename fails. The previous file is intact in every case.
    """
    path = check_target(path, overwrite, what)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    except OSError as error:
        raise type(error)(error.errno, f"Cannot write {what} '{path}': {error.strerror} (creating a temporary "
                                       f"file in '{folder}')", path) from None
    os.close(fd)
    try:
        yield tmp
        if os.environ.get("FASTFIT_FSYNC", "1") != "0":
            _fsync_file(tmp)
        if not overwrite and os.path.exists(path):  # appeared while we were writing
            raise FileExistsError(17, f"{what.capitalize()} '{path}' already exists and overwrite=False", path)
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException as error:
        _remove_quietly(tmp)
        if isinstance(error, OSError) and not isinstance(error, FileExistsError) and path not in str(error):
            raise type(error)(error.errno, f"Cannot write {what} '{path}': {error.strerror or error}; the "
                                           "previous file (if any) is unchanged", path) from error
        raise


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding=None, newline=None, overwrite=True, what="file"):
    """Context manager yielding an open file whose content replaces `path` atomically when the block ends.

    Arguments:
        path: str or path-like.
        mode: 'w' / 'wb' (new content), or 'a' / 'ab' (the existing content is copied first, then the block
            appends to it: an atomic "append" by rewriting the whole file).
        encoding, newline: as for `open` (text modes).
        overwrite: if False, an existing file is an error.
        what: how error messages name the file.

    Raises:
        ValueError: unsupported `mode`. See `atomic_path` for the rest.
    """
    if mode not in ("w", "wb", "a", "ab"):
        raise ValueError(f"atomic_write: `mode` must be 'w', 'wb', 'a' or 'ab', got {mode!r}")
    with atomic_path(path, overwrite=overwrite, what=what) as tmp:
        if mode.startswith("a") and os.path.exists(path):
            shutil.copyfile(path, tmp)
        handle = open(tmp, mode, encoding=encoding, newline=newline)
        with handle:
            yield handle


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep_mode(path, tmp):
    """mkstemp creates files readable by the owner only; give the new file the permissions a plain open would."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass
