"""Batches from a Python generator or a `Sequence`, prefetched by workers while the engine trains.

What stays true:
- batches come out in the order asked for (`Sequence`) or the order the generator yields them, whatever the
  number of workers, so a fit is deterministic;
- an exception raised by a generator, a `__getitem__` or a worker re-raises in the training thread with the
  worker's traceback (processes: as the exception's `__cause__`), and a worker process that dies raises
  instead of leaving the caller waiting;
- `close()` (always called by the `with` block) stops and joins every worker thread and process it started,
  whether training ended normally, with an error or with Ctrl-C.
"""
import collections
import concurrent.futures
import multiprocessing
import queue
import threading

_POLL_SECONDS = 0.1  # how often a waiting thread looks whether it should stop


def check_workers(workers, use_multiprocessing, max_queue_size):
    """Check the Keras 2 worker arguments; return them as ints/bool.

    Raises:
        ValueError: a negative `workers` or a non-positive `max_queue_size`.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"`workers` must be an integer >= 0, got {workers!r}")
    if isinstance(max_queue_size, bool) or not isinstance(max_queue_size, int) or max_queue_size < 1:
        raise ValueError(f"`max_queue_size` must be a positive integer, got {max_queue_size!r}")
    return workers, bool(use_multiprocessing), max_queue_size


class SequenceReader:
    """Serve `sequence[i]` for `i` in `indices`, in that order, prefetching up to `max_queue_size` batches.

    `workers=0` reads in the calling thread; otherwise `workers` threads, or forked processes (each with a
    copy of the sequence as it is now) when `use_multiprocessing` is true.
    """

    def __init__(self, sequence, indices, workers, use_multiprocessing, max_queue_size):
        self._sequence = sequence
        self._indices = [int(i) for i in indices]
        self._ahead = max(max_queue_size, workers)
        self._executor = None
        if workers and use_multiprocessing:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                initializer=_install_sequence, initargs=(sequence,))
            self._task = _read_installed
        elif workers:
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                                   thread_name_prefix="fastfit-sequence")
            self._task = sequence.__getitem__

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __iter__(self):
        if self._executor is None:
            for index in self._indices:
                yield self._sequence[index]
            return
        pending = collections.deque()
        upcoming = iter(self._indices)
        for index in upcoming:
            pending.append(self._executor.submit(self._task, index))
            if len(pending) >= self._ahead:
                break
        while pending:
            future = pending.popleft()
            batch = _result(future)
            for index in upcoming:
                pending.append(self._executor.submit(self._task, index))
                break
            yield batch

    def close(self):
        executor, self._executor = self._executor, None
        if executor is None:
            return
        processes = list((getattr(executor, "_processes", None) or {}).values())
        # The pool's manager thread also waits for its processes: when it reaps one first, our join returns
        # before the process object has its exit code, so the thread is joined too before close returns.
        manager = getattr(executor, "_executor_manager_thread", None)
        executor.shutdown(wait=not processes, cancel_futures=True)
        for process in processes:  # a worker still reading (e.g. after Ctrl-C) is not waited for
            if process.is_alive():
                process.terminate()
            process.join()
        if manager is not None:
            manager.join()


def _result(future):
    """The future's result; waits in short steps so that Ctrl-C reaches the training thread. (Not through
    `result(timeout=...)`: the TimeoutError it raises is the builtin one, which `__getitem__` may raise too.)"""
    while not concurrent.futures.wait([future], timeout=_POLL_SECONDS).done:
        pass
    try:
        return future.result()
    except concurrent.futures.BrokenExecutor as error:
        raise RuntimeError("a worker process reading the Sequence died (killed, or out of memory); "
                           "see its output above") from error


_INSTALLED = None


def _install_sequence(sequence):
    global _INSTALLED
    _INSTALLED = sequence


def _read_installed(index):
    return _INSTALLED[index]


class GeneratorReader:
    """Iterate a generator, in a background thread when `workers > 0` (prefetching `max_queue_size` items).

    A generator yields one item at a time, so one thread drains it whatever `workers` says: the batches and
    their order are those of the generator. The thread lives from the first item asked for to `close()`.
    """

    def __init__(self, generator, workers, max_queue_size):
        self._generator = generator
        self._threaded = workers > 0
        self._queue = queue.Queue(max_queue_size)
        self._stop = threading.Event()
        self._thread = None
        self._done = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def next(self):
        """The next item; raises StopIteration when the generator is exhausted."""
        if self._done:
            raise StopIteration
        if not self._threaded:
            try:
                return next(self._generator)
            except StopIteration:
                self._done = True
                raise
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name="fastfit-generator", daemon=True)
            self._thread.start()
        while True:
            try:
                kind, value = self._queue.get(timeout=_POLL_SECONDS)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("the generator thread stopped without a result") from None
        if kind == "item":
            return value
        self._done = True
        if kind == "end":
            raise StopIteration
        raise value  # the generator's own exception, with its traceback

    def _drain(self):
        while not self._stop.is_set():
            try:
                message = ("item", next(self._generator))
            except StopIteration:
                message = ("end", None)
            except BaseException as error:  # noqa: BLE001 - handed to the training thread
                message = ("error", error)
            while not self._stop.is_set():
                try:
                    self._queue.put(message, timeout=_POLL_SECONDS)
                    break
                except queue.Full:
                    continue
            if message[0] != "item":
                return

    def close(self):
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
