"""Reading a model file without letting libhdf5 crash, hang or exhaust the caller (threat model: docs/saving.md).

libhdf5 is a large C library; a crafted or damaged file can make it crash (SIGSEGV) or loop forever while it
parses metadata. So a file not known to be intact is parsed in a short-lived child process
(`h5inspect.py` run by `sys.executable`, without importing fastfit) with an address-space limit and a
wall-clock timeout; it hands back a JSON description of the file and then raw array bytes, in a framed
format the parent checks: the child parses untrusted data, so what it sends is untrusted too. Nothing is
unpickled. A crash, a hang or running out of memory in the child is a clean `ValueError` here.

A file this process wrote itself (`remember_written`, called by the writers; recognised by path, device,
inode, size and modification time) is read in-process (the fast path): its content is what fastfit wrote,
unless someone with write access to it changed it and restored its size and mtime. Both paths run the same
structural checks (`h5inspect.describe`).
"""
import collections
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import NamedTuple

import h5py
import numpy as np

from fastfit.saving import h5inspect

_SCRIPT = h5inspect.__file__
# Address space of the reader child while it parses metadata (Python + NumPy + h5py take ~120 MB), and on
# top of that while it reads data: twice the largest array asked for.
CHILD_MEMORY = 1 << 30
# Upper bound of the manifest the child sends (its JSON attributes are at most 4 x 64 MiB of text).
_MAX_MANIFEST = 4 * 2 * h5inspect.MAX_TEXT_BYTES + (64 << 20)
_RUNNER = ("import sys; del sys.path[0]; sys.argv = sys.argv[1:]; import runpy; "
           "runpy.run_path(sys.argv[0], run_name='__main__')")  # not the current folder's modules


def timeout_seconds(size: int) -> float:
    """The reader child's time limit for a file of `size` bytes: FASTFIT_LOAD_TIMEOUT, else 60 s + 1 s/20 MB."""
    value = os.environ.get("FASTFIT_LOAD_TIMEOUT")
    if value:
        try:
            return max(0.1, float(value))
        except ValueError:
            raise ValueError(f"FASTFIT_LOAD_TIMEOUT must be a number of seconds, got {value!r}") from None
    return 60.0 + size / 20e6


class Weight(NamedTuple):
    """A dataset of the file: its name as listed, its path (components), shape and dtype."""
    name: str
    parts: tuple
    shape: tuple
    dtype: np.dtype


class Contents:
    """What a model file holds: `attrs` (JSON attributes as text), `groups` ('/' and/or 'model_weights':
    {'listed': bool, 'layers': [(layer name, [Weight])]}), `optimizer` ([Weight] or None); `read` reads arrays."""

    def __init__(self, manifest, read, where):
        self.where = where
        self.attrs, self.groups, self.optimizer = _validated(manifest, where)
        self._read = read

    def read(self, weights: "list[Weight]") -> "list[np.ndarray]":
        """The arrays of `weights` (from this object), in order; their shapes and dtypes are checked."""
        arrays = self._read(list(weights)) if weights else []
        for weight, array in zip(weights, arrays):
            if array.shape != weight.shape or array.dtype != weight.dtype:  # defence in depth
                raise ValueError(f"{self.where}: weight '{weight.name}' came back with the wrong shape or dtype")
        return arrays


@contextlib.contextmanager
def open_contents(path: str, what: str, size: int) -> "Iterator[Contents]":
    """Yield the `Contents` of the regular file `path` (checked by the caller), through the reader child
    unless this process wrote the file.

    Raises:
        ValueError: the file is not a well-formed model file, or reading it crashed, hung or ran out of memory
            (names the file).
    """
    where = f"{what}: '{path}'"
    if known_intact(path):
        with _local(path, where) as contents:
            yield contents
    else:
        child = _Child(path, where, timeout_seconds(size))
        try:
            yield Contents(child.manifest(), child.read, where)
        finally:
            child.close()


@contextlib.contextmanager
def _local(path, where):
    try:
        h5file = h5py.File(path, "r")
    except (OSError, RuntimeError) as error:
        raise ValueError(f"{where}: cannot open it: the file is corrupted or truncated ({error})") from None
    with h5file:
        def read(weights):
            return [h5inspect.read_array(h5file, w.parts, w.shape, w.dtype.str) for w in weights]
        try:
            yield Contents(h5inspect.describe(h5file), _plain_errors(read, where), where)
        except h5inspect.BadFile as error:
            raise ValueError(f"{where}: {error}") from None
        except (OSError, RuntimeError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise ValueError(f"{where}: cannot read it: the file is corrupted or truncated "
                             f"({type(error).__name__}: {error})") from None


def _plain_errors(read, where):
    def checked(weights):
        try:
            return read(weights)
        except h5inspect.BadFile as error:
            raise ValueError(f"{where}: {error}") from None
        except (OSError, RuntimeError, KeyError, TypeError) as error:
            raise ValueError(f"{where}: cannot read it: the file is corrupted or truncated "
                             f"({type(error).__name__}: {error})") from None
    return checked


class _Child:
    """The reader child for one file (see the module docstring)."""

    def __init__(self, path, where, timeout):
        self.where, self.timeout, self.expired = where, timeout, False
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        env.pop("HDF5_PLUGIN_PATH", None)
        self.process = subprocess.Popen(
            [sys.executable, "-c", _RUNNER, _SCRIPT, path, str(CHILD_MEMORY)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True)
        self.timer = threading.Timer(timeout, self._expire)
        self.timer.daemon = True
        self.timer.start()

    def _expire(self):
        self.expired = True
        self.process.kill()

    def manifest(self):
        payload = self._message(b"J", _MAX_MANIFEST)
        try:
            return json.loads(bytes(payload))
        except (ValueError, RecursionError):
            raise ValueError(f"{self.where}: the reader returned a malformed description of the file") from None

    def read(self, weights):
        largest = max(_nbytes(w) for w in weights)
        request = {"read": [[list(w.parts), list(w.shape), w.dtype.str] for w in weights],
                   "memory": CHILD_MEMORY + 2 * largest}
        try:
            self.process.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
            self.process.stdin.flush()
        except OSError:
            pass  # the child is gone: _message says why
        arrays = []
        for weight in weights:
            out = np.empty(weight.shape, dtype=weight.dtype)
            self._message(b"D", out.nbytes, into=memoryview(out.reshape(-1).view(np.uint8)))
            arrays.append(out)
        return arrays

    def _message(self, kind, limit, into=None):
        """The payload of the next message, which must be of `kind` (an E message raises its error)."""
        header = self._exact(h5inspect.HEADER.size)
        found, length = h5inspect.HEADER.unpack(header)
        if found == b"E" and length <= 1 << 16:
            text = bytes(self._exact(length)).decode("utf-8", "replace")
            raise ValueError(f"{self.where}: {text}")
        if found != kind or length > limit or (into is not None and length != len(into)):
            raise ValueError(f"{self.where}: the reader sent an unexpected message (the file is crafted or the "
                             "reader failed)")
        return self._exact(length, into)

    def _exact(self, count, into=None):
        buffer = into if into is not None else memoryview(bytearray(count))
        done = 0
        while done < count:
            got = self.process.stdout.readinto(buffer[done:])
            if not got:
                raise self._failure()
            done += got
        return buffer

    def _failure(self):
        """The error for a child that stopped before sending what was expected."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if self.expired:
            return ValueError(f"{self.where}: reading it took longer than {self.timeout:.0f} s, so it was stopped "
                              "(libhdf5 loops on some damaged or crafted files; FASTFIT_LOAD_TIMEOUT sets the "
                              "limit)")
        if code is not None and code < 0:
            import signal
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return ValueError(f"{self.where}: the HDF5 library crashed ({name}) while reading it, in the reader "
                              "process: the file is corrupted or crafted")
        return ValueError(f"{self.where}: the reader process stopped (exit code {code}) while reading it: the "
                          "file is corrupted or crafted, or memory ran out")

    def close(self):
        self.timer.cancel()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _nbytes(weight):
    count = 1
    for dim in weight.shape:
        count *= dim
    return count * weight.dtype.itemsize


# -- checking what the reader sent ---------------------------------------------------------------------------
def _validated(manifest, where):
    """(attrs, groups, optimizer) from a manifest, every field checked for type and range."""
    bad = ValueError(f"{where}: the reader returned a malformed description of the file")
    if not isinstance(manifest, dict):
        raise bad
    attrs = manifest.get("attrs")
    if not isinstance(attrs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in attrs.items()):
        raise bad
    groups = {}
    raw_groups = manifest.get("groups")
    if not isinstance(raw_groups, dict):
        raise bad
    for key, group in raw_groups.items():
        if (key not in ("/", "model_weights") or not isinstance(group, dict)
                or not isinstance(group.get("layers"), list)):
            raise bad
        layers = []
        for entry in group["layers"]:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                    and isinstance(entry[1], list)):
                raise bad
            layers.append((entry[0], [_weight(item, bad) for item in entry[1]]))
        groups[key] = {"listed": bool(group.get("listed")), "layers": layers}
    optimizer = manifest.get("optimizer")
    if optimizer is not None:
        if not isinstance(optimizer, list):
            raise bad
        optimizer = [_weight(item, bad) for item in optimizer]
    return attrs, groups, optimizer


def _weight(item, bad):
    if not (isinstance(item, list) and len(item) == 4):
        raise bad
    name, parts, shape, dtype = item
    if not (isinstance(name, str) and isinstance(parts, list) and parts and all(isinstance(p, str) for p in parts)
            and isinstance(shape, list) and len(shape) <= h5inspect.MAX_RANK
            and all(type(d) is int and 0 <= d < 1 << 62 for d in shape) and dtype in h5inspect.DTYPES):
        raise bad
    return Weight(name, tuple(parts), tuple(shape), np.dtype(dtype))


# -- files this process wrote --------------------------------------------------------------------------------
_written: "collections.OrderedDict[str, tuple]" = collections.OrderedDict()  # path -> (dev, inode, size, mtime_ns)
_written_lock = threading.Lock()
_MAX_REMEMBERED = 256


def _identity(path):
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def remember_written(path: str) -> None:
    """Record that this process has just written the file at `path` (it may take the in-process fast path)."""
    try:
        identity = _identity(path)
    except OSError:
        return
    key = os.path.abspath(path)
    with _written_lock:
        _written[key] = identity
        _written.move_to_end(key)
        while len(_written) > _MAX_REMEMBERED:
            _written.popitem(last=False)


def known_intact(path: str) -> bool:
    """True when `path` is a file this process wrote and nothing has replaced or resized it since."""
    key = os.path.abspath(path)
    with _written_lock:
        identity = _written.get(key)
    if identity is None:
        return False
    try:
        return _identity(path) == identity
    except OSError:
        return False
