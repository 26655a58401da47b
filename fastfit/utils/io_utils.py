"""Atomic file writes: every file fastfit writes appears whole or not at all.

A write goes to a temporary file in the target's folder (same file system, so the final `os.replace` is an
atomic rename), is flushed to disk with `fsync`, and is then moved over the target. If anything fails, or
the process is interrupted by an exception, the temporary file is removed and the previous file is left
untouched. A process killed outright (SIGKILL) can leave a hidden `.<name>.*.tmp` file behind, but never a
half-written target.

The folder itself is not fsynced: after a power cut it shows either the old complete file or the new
complete one, which is all atomicity needs, and it saves a second fsync per checkpoint.

Replacing a large file frees the old file's blocks, which the kernel does inside the rename (slow on file
systems that discard freed blocks). So the old file (from 4 MiB) is first hard-linked to a hidden
`.<name>.*.old.tmp` name, and a background thread removes that link after the rename: the caller never
waits for the blocks to be freed. A process killed in between leaves that hidden file behind, like
a killed writer leaves its temporary file. `FASTFIT_FSYNC=0`
skips the file fsync too, for scratch checkpoints on slow disks: files then stay atomic against crashes of
the process, not of the machine.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import queue
import random
import shutil
import stat
import threading
from collections.abc import Iterable, Iterator
from typing import IO, Any

from fastfit.utils.hdf5_matrix import HDF5Matrix  # noqa: F401  (Keras 2: keras.utils.io_utils.HDF5Matrix)

PathLike = str | bytes | os.PathLike  # what the functions here accept as a file name

# Previous files at least this large are unlinked in the background.
_RECLAIM_BYTES = 1 << 22
# Buffers per os.writev call (POSIX guarantees at least 16; Linux takes 1024).
try:
    _IOV_MAX = max(16, os.sysconf("SC_IOV_MAX"))
except (AttributeError, ValueError, OSError):
    _IOV_MAX = 16
_to_remove: queue.SimpleQueue[str] = queue.SimpleQueue()
_remover = None
_remover_lock = threading.Lock()


def as_path(path: PathLike, what: str = "file") -> str:
    """`path` (str, bytes or path-like) as a str.

    Raises:
        TypeError: `path` is not a str or path-like (the message names `what`).
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"the {what} path must be a str or path-like, got {type(path).__name__} {path!r}") from None
    return os.fsdecode(path) if isinstance(path, bytes) else path


def _target(path, overwrite, what):
    """Check that `path` may be written before any work is done; return it as a str with its `os.stat`
    result (None when it does not exist).

    An existing file is the common case (every checkpoint after the first): it takes exactly one system
    call (`stat`), whose result the caller reuses instead of asking again.

    Arguments:
        overwrite: if False, an existing file is an error (fastfit never prompts on stdin).
        what: how error messages name the file ("model file", "weights file", ...).

    Raises:
        TypeError: `path` is not a str or path-like.
        FileExistsError: the file exists and `overwrite` is False.
        FileNotFoundError: the folder does not exist (it is not created).
        NotADirectoryError / IsADirectoryError: the folder is a file, or the target is a folder.
    """
    path = as_path(path, what)
    try:
        previous = os.stat(path)
    except OSError:
        previous = None
    if previous is None or stat.S_ISDIR(previous.st_mode):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.exists(folder):
            raise FileNotFoundError(2, f"Cannot write {what} '{path}': the folder '{folder}' does not exist", path)
        if not os.path.isdir(folder):
            raise NotADirectoryError(20, f"Cannot write {what} '{path}': '{folder}' is not a folder", path)
        if previous is not None:
            raise IsADirectoryError(21, f"Cannot write {what} '{path}': it is a folder", path)
    elif not overwrite:
        raise FileExistsError(17, f"{what.capitalize()} '{path}' already exists and overwrite=False; pass "
                                  "overwrite=True to replace it", path)
    return path, previous


@contextlib.contextmanager
def atomic_path(path: PathLike, overwrite: bool = True, what: str = "file", fsync: bool = True) -> Iterator[str]:
    """Context manager yielding a temporary path to write; on success it replaces `path` atomically.

    Use it for libraries that want a file name (h5py): `with atomic_path('m.h5') as tmp: h5py.File(tmp, 'w')`.
    The caller must close the file before the block ends. `fsync=False` skips the flush to disk (as
    FASTFIT_FSYNC=0 does for every file): the file stays atomic against a crash of the process, but a power
    cut may bring back the previous version.

    Raises:
        see `_target`; OSError (with the target path in the message) when the folder is not writable,
        the disk is full or the rename fails. The previous file is intact in every case.
    """
    with _atomic(path, overwrite, what, fsync) as (_fd, tmp):
        yield tmp


@contextlib.contextmanager
def atomic_fd(path: PathLike, overwrite: bool = True, what: str = "file", fsync: bool = True) -> Iterator[int]:
    """Like `atomic_path`, but yields the open file descriptor (read-write, at offset 0) of the temporary file.

    For writers of raw buffers (`os.writev`): the whole write is then a handful of system calls (stat,
    create, write, fsync, close, rename). The descriptor is closed by this context manager.
    """
    with _atomic(path, overwrite, what, fsync) as (fd, _tmp):
        yield fd


@contextlib.contextmanager
def _atomic(path, overwrite, what, fsync):
    """Yield (fd, tmp): a new temporary file next to `path`, open read-write; on success move it over `path`.

    The descriptor stays open until the end, also when the caller writes the file by name: `fsync` of any
    descriptor of a file flushes the file.
    """
    path, previous = _target(path, overwrite, what)
    folder = os.path.dirname(os.path.abspath(path))
    # The permissions a plain open would give: the previous file's, or the default (0o666 less the umask).
    mode = previous.st_mode & 0o777 if previous is not None else 0o666
    try:
        fd, tmp = _create_temp(folder, os.path.basename(path), mode)
    except OSError as error:
        raise type(error)(error.errno, f"Cannot write {what} '{path}': {error.strerror} (creating a temporary "
                                       f"file in '{folder}')", path) from None
    closed = False
    try:
        if previous is not None and mode & UMASK:  # bits the umask took away from the previous file's mode
            _chmod(fd, tmp, mode)
        yield fd, tmp
        if fsync and fsync_enabled():
            os.fsync(fd)
        closed = True
        os.close(fd)
        if not overwrite and os.path.exists(path):  # appeared while we were writing
            raise FileExistsError(17, f"{what.capitalize()} '{path}' already exists and overwrite=False", path)
        _replace(tmp, path, previous)
    except BaseException as error:
        if not closed:
            os.close(fd)
        _remove_quietly(tmp)
        if isinstance(error, OSError) and not isinstance(error, FileExistsError) and path not in str(error):
            raise type(error)(error.errno, f"Cannot write {what} '{path}': {error.strerror or error}; the "
                                           "previous file (if any) is unchanged", path) from error
        raise


def fsync_enabled() -> bool:
    """False when FASTFIT_FSYNC=0 asks to skip the flush to disk of every file written."""
    return os.environ.get("FASTFIT_FSYNC", "1") != "0"


def write_buffers(fd: int, buffers: Iterable[Any]) -> None:
    """Write every buffer (bytes-like) to `fd` in order, with as few system calls as `os.writev` allows."""
    views = [memoryview(buffer).cast("B") for buffer in buffers]
    views = [view for view in views if len(view)]
    while views:
        written = os.writev(fd, views[:_IOV_MAX]) if hasattr(os, "writev") else os.write(fd, views[0])
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if written:
            views[0] = views[0][written:]


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str | None = None, newline: str | None = None,
                 overwrite: bool = True, what: str = "file", fsync: bool = True) -> Iterator[IO[Any]]:
    """Context manager yielding an open file whose content replaces `path` atomically when the block ends.

    Arguments:
        path: str or path-like.
        mode: 'w' / 'wb' (new content), or 'a' / 'ab' (the existing content is copied first, then the block
            appends to it: an atomic "append" by rewriting the whole file).
        encoding, newline: as for `open` (text modes).
        overwrite: if False, an existing file is an error.
        what: how error messages name the file.
        fsync: flush the file to disk before the rename (see `atomic_path`).

    Raises:
        ValueError: unsupported `mode`. See `atomic_path` for the rest.
    """
    if mode not in ("w", "wb", "a", "ab"):
        raise ValueError(f"atomic_write: `mode` must be 'w', 'wb', 'a' or 'ab', got {mode!r}")
    with atomic_path(path, overwrite=overwrite, what=what, fsync=fsync) as tmp:
        if mode.startswith("a") and os.path.exists(path):
            shutil.copyfile(path, tmp)
        handle = open(tmp, mode, encoding=encoding, newline=newline)
        with handle:
            yield handle


def _replace(tmp, path, previous):
    """os.replace(tmp, path), leaving the unlinking of a large previous file (`previous`: its stat) to a
    background thread."""
    old = None
    if previous is not None and previous.st_size >= _RECLAIM_BYTES:
        old = tmp[:-len(".tmp")] + ".old.tmp"
        try:
            os.link(path, old)
        except OSError:  # gone meanwhile, or no hard links here: replace it directly
            old = None
    try:
        os.replace(tmp, path)
    except BaseException:
        if old is not None:
            _remove_quietly(old)
        raise
    if old is not None:
        _remove_later(old)


def _remove_later(path):
    global _remover
    with _remover_lock:
        if _remover is None or not _remover.is_alive():  # first use, or a forked child
            _remover = threading.Thread(target=_remove_forever, daemon=True, name="fastfit old-file remover")
            _remover.start()
    _to_remove.put(path)


def _remove_forever():
    while True:
        _remove_quietly(_to_remove.get())


@atexit.register
def _remove_pending():
    while True:
        try:
            _remove_quietly(_to_remove.get_nowait())
        except queue.Empty:
            return


def _read_umask():
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


# Read once: os.umask can only be read by setting it, which is not thread-safe.
UMASK = _read_umask()
_temp_names = random.Random()
_CREATE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def temp_path(path: str) -> str:
    """A new name for a temporary file next to `path`: `.<name>.<12 hex digits>.tmp` in the same folder (not
    created)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{random_bits(48):012x}.tmp")


def random_bits(bits: int) -> int:
    """A random int of `bits` bits for temporary file names (not for secrets)."""
    return _temp_names.getrandbits(bits)


def _create_temp(folder, name, mode):
    """Create a new hidden file `.<name>.<random>.tmp` in `folder` with `mode` (less the umask): (fd, path).

    What `tempfile.mkstemp` does, in one system call and with the final permissions (mkstemp's are the
    owner's only, which would need a chmod per file). O_EXCL never opens an existing file or a symlink.
    """
    for _ in range(100):
        tmp = temp_path(os.path.join(folder, name))
        try:
            return os.open(tmp, _CREATE_FLAGS, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(17, f"no free temporary file name in '{folder}'", folder)


def _chmod(fd, path, mode):
    if os.chmod in os.supports_fd:
        os.chmod(fd, mode)
    else:
        os.chmod(path, mode)


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass

