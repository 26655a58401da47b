"""Background writes of checkpoint files: the machinery behind `checkpoint_writer` (nothing else uses it).

A `BackgroundWriter` hands one file write at a time to a worker: a new write first waits for its previous
one, and an error of the background write is raised by the next `submit` or `wait`. The files stay atomic:
the worker writes through `files.write_snapshot` (temporary file, fsync, rename). When a write may finish
after the hook that asked for it returns is decided by `checkpoint_writer`, not here.

A small model file (`files.start_image_write`) is written by the native writer thread instead, which needs no
GIL and moves to the CPU the training thread is not on. Its job here only collects the outcome; a failure the
native thread leaves to Python (a missing folder) is written again, by whoever waits for it first.

One daemon worker runs the Python writes in submission order. It is a daemon so that an idle worker never keeps
the interpreter alive, and an `atexit` hook finishes pending writes before the interpreter exits. Readers
(`files.reading`) and synchronous saves of the same path `wait_for` it first, so within the process nobody
sees an older checkpoint than the last one submitted.
"""
from __future__ import annotations

import atexit
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_settle_lock = threading.RLock()  # a redo's own save may settle another native job of the same thread
_in_flight = {}       # absolute path -> the last _Job writing it
_jobs = queue.SimpleQueue()
_worker = None
class _Job:
    """A write the Python worker runs: `write()`."""

    def __init__(self, key, write):
        self.key, self.write = key, write
        self.done = threading.Event()
        self.error = None

    def wait(self):
        self.done.wait()


class _NativeJob:
    """A write the native writer thread runs (`files.NativeWrite`); `redo()` writes the file in Python when the
    native write failed in a way Python handles (a missing folder)."""

    def __init__(self, key, native, redo):
        self.key, self._native, self._redo = key, native, redo
        self._settled = False
        self.error = None

    def wait(self):
        if self._settled:
            return
        with _settle_lock:  # one for all native jobs: settling is quick, except for a rare redo
            if self._settled:
                return
            error = self._native.wait()
            _forget(self)  # the redo's own wait_for must not wait for this job
            if error is not None and self._native.redo_in_python:
                try:
                    self._redo()
                except BaseException as redo_error:  # kept for the writer, like a Python worker's error
                    error = redo_error
                else:
                    error = None
            self.error, self._settled = error, True


def _forget(job):
    with _lock:
        if _in_flight.get(job.key) is job:
            del _in_flight[job.key]


def wait_for(path: str) -> None:
    """Block until no background write of `path` is pending (its errors stay with its writer)."""
    wait_for_absolute(os.path.abspath(path))


def wait_for_absolute(path: str) -> None:
    """`wait_for` of a path that is already absolute and normalised (`os.path.abspath`)."""
    job = _in_flight.get(path)  # one dict lookup: atomic under the GIL
    if job is not None and threading.current_thread() is not _worker:
        job.wait()


class BackgroundWriter:
    """Hands one file write at a time to the worker; re-raises its error on the next call."""

    def __init__(self) -> None:
        self._job: _Job | _NativeJob | None = None

    def submit(self, path: str, write: Callable[[], Any], started: Any = None) -> None:
        """Wait for the previous write (raising its error), then queue `write()`, which writes `path`.

        `started`: the same file already being written by the native writer thread (`files.NativeWrite`);
        `write()` then only runs if that write fails in a way Python handles, when the job is waited for.

        Raises:
            whatever the previous background write raised (OSError: disk full, ...).
        """
        self.wait()
        if started is not None:
            job: _Job | _NativeJob = _NativeJob(started.path, started, write)  # its path is absolute
            with _lock:
                _in_flight[job.key] = job
            self._job = job
            return
        job = _Job(os.path.abspath(path), write)
        with _lock:
            _in_flight[job.key] = job
        self._job = job
        _start_worker()
        _jobs.put(job)

    def wait(self) -> None:
        """Block until the pending write is on disk.

        Raises:
            the error of the background write, if it failed (the previous file is then unchanged).
        """
        job, self._job = self._job, None
        if job is not None:
            job.wait()
            if job.error is not None:
                raise job.error


def _start_worker():
    global _worker
    with _lock:
        if _worker is None or not _worker.is_alive():  # first use, or a forked child
            _worker = threading.Thread(target=_work, daemon=True, name="fastfit write-behind")
            _worker.start()


def _work():
    while True:
        job = _jobs.get()
        try:
            job.write()
        except BaseException as error:  # kept for the training thread: a thread's exception is otherwise lost
            job.error = error
        finally:
            with _lock:
                if _in_flight.get(job.key) is job:
                    del _in_flight[job.key]
            job.done.set()


def _forget_parent_jobs():
    """A forked child has no worker and will never see the parent's pending writes complete."""
    global _jobs, _worker
    _in_flight.clear()
    _jobs, _worker = queue.SimpleQueue(), None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent_jobs)


@atexit.register
def finish_pending() -> None:
    """Block until every pending background write is done (their errors stay with their writers)."""
    with _lock:
        pending = list(_in_flight.values())
    for job in pending:
        job.wait()
