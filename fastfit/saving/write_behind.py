"""Write-behind: the training thread captures a checkpoint's content, a background thread writes it.

Writing a checkpoint is mostly waiting for the disk (write, fsync, rename), while fastfit's training loop
runs without the GIL; so `ModelCheckpoint` and `BackupAndRestore` hand the file to a worker thread and go
on training. Each callback owns a `BackgroundWriter`: a new save first waits for its previous one (one file
in flight per callback), an error of the background write is raised by the next `submit` or `wait`, and
the callbacks `wait` in `on_train_end`, so when `fit` returns every checkpoint is on disk. The files stay
atomic: the worker writes through `files.write_snapshot` (temporary file, fsync, rename).

A write submitted at the end of an epoch starts once the epoch-end and epoch-begin callbacks have run
(`fit` calls `hold` before the epoch-end callbacks and `release` just before the next epoch's shuffle; at
most HOLD_SECONDS later otherwise): the worker needs the GIL between its system calls, and the training
thread's callbacks would wait for it. The shuffle (0.5 ms for 60000 rows) releases the GIL, so a small
checkpoint is mostly written beside it rather than beside the training threads. Anyone waiting for a write
lets the held jobs go first (the hold itself stays for later submissions).

A small model file (`files.start_image_write`) is written by the native writer thread instead, which needs no
GIL: it starts at once, held or not, and moves to the CPU the training thread is not on. Its job here only
collects the outcome; a failure the native thread leaves to Python (a missing folder) is written again, by
whoever waits for it first.

One daemon worker runs the Python writes in submission order. It is a daemon so that an idle worker never keeps
the interpreter alive, and an `atexit` hook finishes pending writes before the interpreter exits; `fit`
calls `finish_pending` when it ends with an exception (it then skips `on_train_end`, as Keras does).
Readers (`files.reading`) and synchronous saves of the same path `wait_for` it first, so within the process
nobody sees an older checkpoint than the last one submitted.
"""
import atexit
import os
import queue
import threading

_lock = threading.Lock()
_settle_lock = threading.RLock()  # a redo's own save may settle another native job of the same thread
_in_flight = {}       # absolute path -> the last _Job writing it
_jobs = queue.SimpleQueue()
_worker = None
_holding = False       # between `hold` and `release`: new jobs wait
_held = []             # jobs submitted while holding, not yet let go
HOLD_SECONDS = 0.05


def hold():
    """Jobs submitted from now on wait (at most HOLD_SECONDS) for `release`: the training thread needs the GIL."""
    global _holding
    _holding = True


def release():
    """Let the held jobs run, and the ones submitted from now on: the training thread is in GIL-free code."""
    global _holding
    _holding = False
    _let_go()


def _let_go():
    """Let every held job run now (someone waits for one; the worker runs them in order)."""
    with _lock:
        jobs = _held[:]
        _held.clear()
    for job in jobs:
        job.go.set()


class _Job:
    """A write the Python worker runs: `write()`, once let go."""

    def __init__(self, key, write):
        self.key, self.write = key, write
        self.go = threading.Event()
        self.done = threading.Event()
        self.error = None

    def wait(self):
        if not self.done.is_set():
            _let_go()
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


def wait_for(path):
    """Block until no background write of `path` is pending (its errors stay with its writer)."""
    wait_for_absolute(os.path.abspath(path))


def wait_for_absolute(path):
    """`wait_for` of a path that is already absolute and normalised (`os.path.abspath`)."""
    job = _in_flight.get(path)  # one dict lookup: atomic under the GIL
    if job is not None and threading.current_thread() is not _worker:
        job.wait()


class BackgroundWriter:
    """Hands one file write at a time to the worker; re-raises its error on the next call."""

    def __init__(self):
        self._job = None

    def submit(self, path, write, started=None):
        """Wait for the previous write (raising its error), then queue `write()`, which writes `path`.

        `started`: the same file already being written by the native writer thread (`files.NativeWrite`);
        `write()` then only runs if that write fails in a way Python handles, when the job is waited for.

        Raises:
            whatever the previous background write raised (OSError: disk full, ...).
        """
        self.wait()
        if started is not None:
            job = _NativeJob(started.path, started, write)  # its path is absolute
            with _lock:
                _in_flight[job.key] = job
            self._job = job
            return
        job = _Job(os.path.abspath(path), write)
        with _lock:
            _in_flight[job.key] = job
            if _holding:
                _held.append(job)
            else:
                job.go.set()
        self._job = job
        _start_worker()
        _jobs.put(job)

    def wait(self):
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
        job.go.wait(HOLD_SECONDS)
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
    global _jobs, _worker, _holding
    _in_flight.clear()
    _held.clear()
    _holding = False
    _jobs, _worker = queue.SimpleQueue(), None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent_jobs)


@atexit.register
def finish_pending():
    """End any hold and block until every pending background write is done (their errors stay with their
    writers)."""
    release()
    with _lock:
        pending = list(_in_flight.values())
    for job in pending:
        job.wait()
