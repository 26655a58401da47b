"""Opening HDF5 files for fastfit: atomic writing, and reading with clear errors for bad files.

Reading never executes code: configs are JSON, classes come from fastfit's registries or `custom_objects`,
and only numeric datasets are accepted (nothing is unpickled). `reading` is the one way files are read:
the structure and every shape are checked before data is read, and files this process did not write are
parsed by libhdf5 only in a reader child (`isolation`; threat model in docs/saving.md, "Safe loading").

Files fastfit writes start with a 512-byte HDF5 userblock (which every HDF5 reader skips) holding a CRC32 of
the rest of the file, checked before HDF5 parses the file: a truncated or accidentally damaged fastfit file
is a clean `ValueError`. It is no protection against a crafted file (anyone can recompute it); the reader
child is.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import stat
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from fastfit._types import PathLike
from fastfit.saving import image, isolation, snapshot, write_behind
from fastfit.utils import io_utils

try:  # the native writer thread (Linux builds)
    from fastfit._ext import _filewrite
except ImportError:
    _filewrite = None

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MAGIC = b"FASTFIT-HDF5"
_CHUNK = 1 << 22
# Bytes reserved before the HDF5 data; fastfit keeps a checksum of the rest of the file there.
USERBLOCK = 512
# Below this a second thread for the checksum costs more than it saves.
_PARALLEL_CRC_BYTES = 1 << 22


def write_snapshot(filepath: PathLike, content: snapshot.Snapshot | image.FileImage, overwrite: bool,
                   what: str) -> None:
    """Write a `snapshot.Snapshot` (or an `image.FileImage` made from one) as a fastfit HDF5 file, atomically.

    HDF5 lays the file out in memory (`image`, reused for a snapshot of the same structure), leaving the
    userblock free; Python then writes it, with its checksum header, to a temporary file and renames it into
    place (`io_utils.atomic_fd`: 6 system calls for a small checkpoint, each of which costs tens of
    microseconds on a virtual machine). HDF5 itself never writes to disk, because a failing write inside HDF5
    (disk full) can crash the process; a Python write fails with a plain OSError.

    Raises:
        FileExistsError, FileNotFoundError, PermissionError, OSError: see `io_utils.atomic_path`; the previous
            file is unchanged whenever an error is raised.
    """
    path = io_utils.as_path(filepath, what)
    write_behind.wait_for(path)  # a checkpoint of this path still being written must not land after us
    with io_utils.atomic_fd(path, overwrite=overwrite, what=what) as fd:  # checks the target first
        segments: Callable[[int], Any]  # the file's byte segments from an offset
        if isinstance(content, image.FileImage):
            size, segments = content.size, content.segments
        else:
            layout = image.layout_for(content, USERBLOCK)
            arrays = list(content.arrays())
            size, segments = layout.size, lambda start: layout.segments(arrays, start)
        if size - USERBLOCK < _PARALLEL_CRC_BYTES:
            # Small files (checkpoints every epoch): the checksum first, then one writev for everything.
            crc = _crc32(segments(USERBLOCK))
            io_utils.write_buffers(fd, [_header(crc, size)] + list(segments(USERBLOCK)))
        else:
            # crc32 and file writes both release the GIL: for a large file the checksum runs in a second
            # thread while the body is written.
            os.lseek(fd, USERBLOCK, os.SEEK_SET)
            crc = _while(lambda: _crc32(segments(USERBLOCK)), lambda: io_utils.write_buffers(fd, segments(USERBLOCK)))
            os.lseek(fd, 0, os.SEEK_SET)
            io_utils.write_buffers(fd, [_header(crc, size)])
    isolation.remember_written(path)  # this process's own file: loading it may skip the reader child


def start_image_write(filepath: PathLike, content: image.FileImage, what: str,
                      flush: bool = True) -> NativeWrite | None:
    """Start writing `content` (an `image.FileImage`) in the native writer thread, with no GIL; a `NativeWrite`.

    The file is the one `write_snapshot(filepath, content, True, what)` writes, as atomically against a
    crash of the process; its data is sent to the disk before the rename but not waited for (no fsync:
    `fastfit._ext._filewrite`; `flush_to_disk` makes a file durable). The thread computes the
    checksum too, with zlib (here, where it finds no zlib). Returns None where
    there is no native writer, or for a file large enough to want the checksum beside the write: then
    use `write_snapshot`. `content` must not be refilled before the write is done. `flush`: start the
    writeback to disk before the rename (the caller passes `io_utils.fsync_enabled()`, which it reads once per
    fit, so a save reads no environment variable).
    """
    if _filewrite is None or content.size - USERBLOCK >= _PARALLEL_CRC_BYTES:
        return None
    names = _native_names.get(filepath)
    if names is None:
        names = _names_for_native(filepath, what)
    path, target, temp_prefix = names
    write_behind.wait_for_absolute(path)  # a checkpoint of this path still being written must not land after us
    body = memoryview(content.buffer)[USERBLOCK:]
    if _filewrite.has_crc32():  # the thread puts the checksum into the header
        header, crc_at = bytearray(_blank_header(content.size)), _CRC_AT
    else:
        header, crc_at = _header(zlib.crc32(body), content.size), -1
    job = _filewrite.FileWrite(b"%s%012x.tmp" % (temp_prefix, io_utils.random_bits(48)), target, header, body,
                               flush, io_utils.UMASK, crc_at)
    job.start()
    return NativeWrite(job, path, what)


_native_names = {}  # absolute path as given -> what _names_for_native returns (the per-epoch path is the same)


def _names_for_native(filepath, what):
    """(absolute path, the same as bytes, the bytes its temporary names start with): the native thread writes
    later, maybe after a chdir, so relative paths are resolved now (and not remembered)."""
    given = io_utils.as_path(filepath, what)
    path = os.path.abspath(given)
    names = path, os.fsencode(path), os.fsencode(io_utils.temp_path(path)[:-len("000000000000.tmp")])
    if path == given and len(_native_names) < 64:
        _native_names[path] = names
    return names


def flush_to_disk(filepath: PathLike) -> None:
    """fsync a file written before (ModelCheckpoint's last file of a fit), unless FASTFIT_FSYNC=0; a file
    that is gone or unreadable is left alone (its writer reported any error)."""
    if not io_utils.fsync_enabled():
        return
    try:
        fd = os.open(filepath, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class NativeWrite:
    """A file write running in the native writer thread (`start_image_write`)."""

    def __init__(self, job: Any, path: str, what: str) -> None:
        self._job, self.path, self._what = job, path, what

    def wait(self) -> OSError | None:
        """Block until the write is done; None when it succeeded, else the OSError naming the file.

        The target is unchanged whenever there is an error. `redo_in_python` then says whether the failure
        was one the Python writer handles itself (a missing folder, which it creates).
        """
        failure = self._job.wait()
        if failure is None:
            isolation.remember_written(self.path)
            return None
        code, step = failure
        path, what = self.path, self._what
        folder = os.path.dirname(path)
        self.redo_in_python = step == _filewrite.STEP_CREATE and code in (errno.ENOENT, errno.EEXIST)
        if step == _filewrite.STEP_TARGET and code == errno.EISDIR:
            return IsADirectoryError(code, f"Cannot write {what} '{path}': it is a folder", path)
        if step == _filewrite.STEP_TARGET and code == errno.ENOTDIR:
            return NotADirectoryError(code, f"Cannot write {what} '{path}': '{folder}' is not a folder", path)
        if step == _filewrite.STEP_CREATE:
            return OSError(code, f"Cannot write {what} '{path}': {os.strerror(code)} (creating a temporary file "
                                 f"in '{folder}')", path)
        return OSError(code, f"Cannot write {what} '{path}': {os.strerror(code)}; the previous file (if any) is "
                             "unchanged", path)

    redo_in_python = False


def _crc32(segments):
    value = 0
    for segment in segments:
        value = zlib.crc32(segment, value)
    return value


def _while(compute, work):
    """`compute()`, run in a second thread while `work()` runs in this one."""
    result = []
    thread = threading.Thread(target=lambda: result.append(compute()), name="fastfit crc32")
    thread.start()
    try:
        work()
    finally:
        thread.join()
    return result[0]


def _header(crc, size):
    return (_MAGIC + b" crc32=%08x size=%d\n" % (crc, size)).ljust(USERBLOCK, b"\0")


_CRC_AT = len(_MAGIC + b" crc32=")  # where the checksum's 8 hex digits start in the header


@functools.lru_cache(maxsize=16)
def _blank_header(size):
    """The header of a `size`-byte file with the checksum left at 0 (for the writer thread to fill in)."""
    return _header(0, size)


def verify_checksum(path: PathLike, head: bytes) -> None:
    """Check a fastfit file against the checksum in its userblock; files without one pass unchecked.

    Raises:
        ValueError: the file is truncated or corrupted (HDF5 itself may crash on damaged metadata, so this runs
            before HDF5 sees the file).
    """
    if not head.startswith(_MAGIC):
        return
    match = re.match(rb" crc32=([0-9a-f]{8}) size=(\d+)\n", head[len(_MAGIC):])
    if match is None:
        raise ValueError(f"'{path}' is corrupted: its fastfit checksum header is damaged")
    expected_crc, expected_size = int(match.group(1), 16), int(match.group(2))
    size = os.path.getsize(path)
    if size != expected_size:
        raise ValueError(f"'{path}' is truncated or corrupted: it has {size} bytes, its fastfit checksum "
                         f"header says {expected_size} (a file changed after saving fails this check)")
    crc = 0
    with open(path, "rb") as handle:
        handle.seek(USERBLOCK)
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            crc = zlib.crc32(chunk, crc)
    if crc != expected_crc:
        raise ValueError(f"'{path}' is corrupted: its content does not match its fastfit checksum (a file "
                         "changed after saving fails this check)")


@contextlib.contextmanager
def reading(filepath: PathLike, what: str) -> Iterator[isolation.Contents]:
    """Yield the `isolation.Contents` of a model file: its structure checked, its arrays read on request, in
    a reader child process unless this process wrote the file (docs/saving.md, "Safety").

    Raises:
        TypeError: `filepath` is not a path.
        FileNotFoundError / IsADirectoryError / PermissionError: naming the path.
        ValueError: not a regular file, not an HDF5 file, corrupted, truncated or crafted (the message names
            the file and what is wrong).
    """
    try:
        path = os.fspath(filepath)
    except TypeError:
        raise TypeError(f"{what}: `filepath` must be a str or path-like, got {type(filepath).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    write_behind.wait_for(path)  # a checkpoint of this path still being written: read the newest
    if not os.path.exists(path):
        raise FileNotFoundError(2, f"{what}: no such file '{path}'", path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, f"{what}: '{path}' is a folder, expected an HDF5 file", path)
    # O_NONBLOCK: opening a FIFO does not wait for a writer; it is refused below like any non-regular file.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb") as probe:  # PermissionError above already names the path
        if not stat.S_ISREG(os.fstat(probe.fileno()).st_mode):
            raise ValueError(f"{what}: '{path}' is not a regular file (a device, FIFO or socket); expected an "
                             "HDF5 file")
        head = probe.read(USERBLOCK)
        size = os.fstat(probe.fileno()).st_size
    try:
        verify_checksum(path, head)
    except ValueError as error:
        raise ValueError(f"{what}: {error}") from None
    if head[:4] == _ZIP_MAGIC:
        raise ValueError(f"{what}: '{path}' is a zip archive (a Keras 3 '.keras' file?), not HDF5; save it from "
                         "Keras with model.save('model.h5') to get a file fastfit reads")
    if not _has_hdf5_signature(path, size):
        raise ValueError(f"{what}: '{path}' is not an HDF5 file (no HDF5 signature)")
    with isolation.open_contents(path, what, size) as contents:
        yield contents


def _has_hdf5_signature(path, size):
    """True when the HDF5 superblock signature is at offset 0, 512, 1024, ... (where libhdf5 looks)."""
    offsets = [0] + [512 << k for k in range(40) if 512 << k < size]
    with open(path, "rb") as handle:
        for offset in offsets:
            handle.seek(offset)
            if handle.read(8) == _HDF5_MAGIC:
                return True
    return False
