"""Data-parallel training across processes on MPI (mpi4py): `import fastfit.distributed as dist; dist.init()`.

A script run with `mpiexec -n N python train.py` trains one model on N ranks. `batch_size` stays the global
batch: every rank draws the same seeded order and trains on its contiguous share of each global batch; one
`MPI_Allreduce` per step sums the gradients and the step's loss/metric sums, so the weights are those of a
one-process run. Rank 0 writes files and prints; every rank sees the same logs (docs/distributed.md).

This module holds the process-level side: joining MPI, the engine threads of a rank, the broadcast of the
model state at the start of `fit`, which callbacks run on which rank, the address and handles of
`MPI_Allreduce` that the engines call (`Reducer`), and the watchdog that aborts the job when the ranks stop
making progress (`Watchdog`). The engines do the per-batch work (`Network.distribute`).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

import numpy as np

from fastfit.contract.ops import trained_params

__all__ = ["init", "is_initialized", "rank", "size", "local_rank", "local_size", "threads_per_rank", "timeout",
           "communicator", "barrier", "broadcast", "allreduce", "step_bytes"]

_comm: Any = None        # COMM_WORLD after init()
_local_rank = 0
_local_size = 1
_threads = 0
_reducer: Reducer | None = None
_watchdog: Watchdog | None = None
DEFAULT_TIMEOUT = 300.0  # seconds; `init(timeout=...)` or the environment variable FASTFIT_MPI_TIMEOUT


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError("fastfit.distributed needs mpi4py and an MPI library: pip install 'fastfit[mpi]' "
                          "(mpi4py and the mpich wheel), then run the script with `mpiexec -n 2 python "
                          "script.py`") from error
    return MPI


def init(threads: int | None = None, timeout: float | None = None) -> None:
    """Join MPI's COMM_WORLD (importing mpi4py initializes MPI) and make `fit` data-parallel across its ranks.

    Sets this rank's engine threads (the BLAS threads of the Cython core) to `threads`, or by default to the
    cores this rank may use: those of `os.sched_getaffinity` when the launcher pinned the rank to fewer cores
    than the node has, else the node's cores divided by the ranks on the node. Installs an excepthook that
    prints the traceback and aborts the whole job (`COMM_WORLD.Abort(1)`), so a failing rank never leaves the
    others waiting. With more than one rank, starts the watchdog: inside `fit` and `evaluate`, a rank on which
    no step (one allreduce: a training or validation batch) completes for `timeout` seconds prints what it was
    doing and aborts the job. `timeout` defaults to the environment variable FASTFIT_MPI_TIMEOUT, else
    `DEFAULT_TIMEOUT` (300 s); 0 turns the watchdog off. Calling `init` again does nothing.

    Raises:
        ImportError: mpi4py is missing (install `fastfit[mpi]`).
        ValueError: `threads` is not a positive int, or `timeout` (or FASTFIT_MPI_TIMEOUT) is not a
            non-negative number of seconds.
    """
    global _comm, _local_rank, _local_size, _threads, _reducer, _watchdog
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"init: `threads` must be a positive int or None, got {threads!r}")
    seconds = _timeout_seconds(timeout)
    if _comm is not None:
        return
    MPI = _mpi()
    comm = MPI.COMM_WORLD
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    _local_rank, _local_size = node.Get_rank(), node.Get_size()
    node.Free()
    _threads = threads if threads is not None else _cores_of_rank(_local_size)
    _set_engine_threads(_threads)
    _comm = comm
    _reducer = Reducer(comm) if comm.Get_size() > 1 else None
    _install_excepthook(comm)
    if _reducer is not None and seconds > 0:
        _watchdog = Watchdog(_reducer, seconds, MPI.Query_thread() == MPI.THREAD_MULTIPLE)


def _timeout_seconds(timeout: float | None) -> float:
    """`timeout`, else FASTFIT_MPI_TIMEOUT, else DEFAULT_TIMEOUT, checked (seconds; 0: no watchdog)."""
    source = "`timeout`"
    if timeout is None:
        text = os.environ.get("FASTFIT_MPI_TIMEOUT", "").strip()
        if not text:
            return DEFAULT_TIMEOUT
        source = "the environment variable FASTFIT_MPI_TIMEOUT"
        try:
            timeout = float(text)
        except ValueError:
            raise ValueError(f"init: {source} must be a number of seconds (0: no timeout), "
                             f"got {text!r}") from None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout < float("inf"):
        raise ValueError(f"init: {source} must be a non-negative number of seconds (0: no timeout), "
                         f"got {timeout!r}")
    return float(timeout)


def _cores_of_rank(ranks_on_node: int) -> int:
    """The cores one rank may use: its affinity set when the launcher pinned it to part of the node, else an
    equal share of the node's cores."""
    node_cores = os.cpu_count() or 1
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = node_cores
    if allowed < node_cores:
        return max(1, allowed)
    return max(1, node_cores // max(1, ranks_on_node))


def _set_engine_threads(threads: int) -> None:
    """Set the thread count of the BLAS the Cython core calls (scipy's OpenBLAS) for the whole process."""
    from scipy.linalg import cython_blas
    try:
        lib = ctypes.CDLL(cython_blas.__file__)
    except OSError:
        return
    for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads"):
        setter = getattr(lib, name, None)
        if setter is not None:
            setter.argtypes, setter.restype = [ctypes.c_int], None
            setter(threads)
            return


def _install_excepthook(comm: Any) -> None:
    """An uncaught exception on any rank prints its traceback and ends every rank of the job."""
    previous = sys.excepthook

    def abort_job(kind, value, tb):
        try:
            sys.stderr.write(f"fastfit.distributed: rank {comm.Get_rank()} of {comm.Get_size()} failed; "
                             "aborting the job\n")
            traceback.print_exception(kind, value, tb)
            sys.stderr.flush()
        finally:
            if previous is not sys.__excepthook__ and previous is not abort_job:
                previous(kind, value, tb)
            _let_launcher_forward_output()
            comm.Abort(1)

    sys.excepthook = abort_job


def _let_launcher_forward_output() -> None:
    """Abort kills every rank at once, and with them the launcher's forwarding of their stderr: a message
    written just before it can be lost. A short pause lets the launcher pass the rank's last words on."""
    time.sleep(0.5)


def is_initialized() -> bool:
    """True after `init()` in this process."""
    return _comm is not None


def rank() -> int:
    """This process's rank in COMM_WORLD (0 without `init()`)."""
    return 0 if _comm is None else int(_comm.Get_rank())


def size() -> int:
    """The number of ranks (1 without `init()`)."""
    return 1 if _comm is None else int(_comm.Get_size())


def local_rank() -> int:
    """This rank's index among the ranks on its node (0 without `init()`)."""
    return _local_rank


def local_size() -> int:
    """The number of ranks on this node (1 without `init()`)."""
    return _local_size


def threads_per_rank() -> int:
    """The engine threads `init()` gave this rank (0 before `init()`: the BLAS default)."""
    return _threads


def communicator() -> Any:
    """The mpi4py communicator fit uses (COMM_WORLD).

    Raises:
        RuntimeError: before `init()`.
    """
    if _comm is None:
        raise RuntimeError("fastfit.distributed: call fastfit.distributed.init() first")
    return _comm


def barrier() -> None:
    """Wait until every rank reaches this point (no-op without `init()`)."""
    if _comm is not None:
        _comm.Barrier()


def broadcast(value: Any, root: int = 0) -> Any:
    """`value` of rank `root` on every rank: a C-contiguous NumPy array is overwritten in place and returned;
    any other value is pickled (the value of `root` is returned). Without `init()`, `value` itself."""
    if _comm is None:
        return value
    if isinstance(value, np.ndarray) and value.flags.c_contiguous and value.flags.writeable:
        _comm.Bcast(value, root=root)
        return value
    return _comm.bcast(value, root=root)


def allreduce(value: Any, average: bool = False) -> Any:
    """The sum (or mean with `average=True`) over ranks of a number or NumPy array, as a new value (float64
    for numbers). Without `init()`, the value itself (as a float or an array copy)."""
    array = np.array(value, dtype=np.float64 if np.isscalar(value) else None)
    if _comm is not None:
        result = np.empty_like(array)
        _comm.Allreduce(array, result)
        array = result
    if average:
        array = array / size()
    return float(array) if np.isscalar(value) else array


def step_bytes(model: Any) -> int:
    """The bytes one training step of `model` sends through its one allreduce: every trainable parameter's
    gradient in the model dtype, plus the step's loss share, metric sums and threshold histograms (the buffer
    `fit` reduces). The model must be compiled."""
    from fastfit.engine import lowering
    if not getattr(model, "compiled", False):
        raise RuntimeError("step_bytes: compile the model first")
    dtype = np.dtype(lowering.model_dtype(model.layers))
    params = trained_params(lowering.model_ops(model))
    readout = model._readout
    tail = 1 + len(readout.engine_metrics) + sum(2 * (len(t) + 1) + 1 for t, _, _ in readout.confusion)
    return int((sum(p.size for p in params) + tail) * dtype.itemsize)


# -- what the engines and `fit` use ---------------------------------------------------------------------------

class Reducer:
    """The ranks of the job and the `MPI_Allreduce` the engines call once per batch.

    `c_entry(dtype)` is what the Cython engine needs to call MPI without the GIL and without MPI headers: the
    address of `MPI_Allreduce` in the library mpi4py loaded, whether MPI handles are ints (MPICH) or pointers
    (Open MPI), the communicator, datatype and MPI_SUM handles, and the address MPI_IN_PLACE stands for. The
    reference engine calls `allreduce_in_place` (mpi4py's `Allreduce`) on the same buffer layout.
    """

    def __init__(self, comm: Any) -> None:
        MPI = _mpi()
        self.comm = comm
        self.rank = int(comm.Get_rank())
        self.size = int(comm.Get_size())
        library = ctypes.CDLL(MPI.__file__)  # the extension module; its symbols include libmpi's
        self._function = int(ctypes.cast(library.MPI_Allreduce, ctypes.c_void_p).value or 0)
        self._int_handles = MPI._sizeof(MPI.Comm) == ctypes.sizeof(ctypes.c_int)
        self._handles = {np.dtype(np.float32): MPI._handleof(MPI.FLOAT),
                         np.dtype(np.float64): MPI._handleof(MPI.DOUBLE)}
        self._comm_handle = MPI._handleof(comm)
        self._sum = MPI._handleof(MPI.SUM)
        self._in_place = ctypes.c_size_t(int(MPI.IN_PLACE)).value
        self._mpi_in_place = MPI.IN_PLACE
        self._mpi_sum = MPI.SUM
        # [allreduces completed, what this rank waits in (0: nothing, 1: a step's allreduce, 2: the broadcast
        # at the start of fit)]: both engines keep it (the Cython loop through `progress_address`, without the
        # GIL); the watchdog reads it.
        self.progress = (ctypes.c_longlong * 2)()
        self.progress_address = ctypes.addressof(self.progress)

    def c_entry(self, dtype: Any) -> tuple[int, bool, int, int, int, int]:
        """(MPI_Allreduce address, int handles?, communicator, datatype, MPI_SUM handles, MPI_IN_PLACE)."""
        return (self._function, self._int_handles, self._comm_handle, self._handles[np.dtype(dtype)], self._sum,
                self._in_place)

    def allreduce_in_place(self, buffer: np.ndarray) -> None:
        """Sum `buffer` over the ranks, in place (the reference engine's one call per batch)."""
        self.progress[1] = 1
        self.comm.Allreduce(self._mpi_in_place, buffer, op=self._mpi_sum)
        self.progress[0] += 1
        self.progress[1] = 0

    @contextlib.contextmanager
    def fit_broadcast(self) -> Iterator[None]:
        """Marks this rank as waiting in the broadcast at the start of fit (for the watchdog's message)."""
        self.progress[1] = 2
        try:
            yield
        finally:
            self.progress[1] = 0


class Watchdog:
    """Aborts the job when the ranks stop making progress inside `fit` or `evaluate` (`watching`).

    A daemon thread reads the reducer's progress counters every `timeout / 10` seconds (at most 1 s). While a
    call is watched, every completed allreduce restarts the clock. A rank that has waited in a collective (a
    step's allreduce, the broadcast at the start of fit) for `timeout` seconds since its last progress prints
    to stderr which rank, step and call it waited in and calls `COMM_WORLD.Abort(1)` (with
    MPI_THREAD_MULTIPLE; else it ends its process with `os._exit(1)`, and the launcher ends the job). A rank
    that has run its own code (a callback...) for `timeout / 2` seconds since its last progress, while the
    others may be waiting for it, prints a warning with the stack of the thread running the call (once per
    stall): it never aborts the job itself, so slow rank-0 work that nobody waits for (a checkpoint written
    after the last step) is not an error.
    """

    def __init__(self, reducer: Reducer, timeout: float, multiple: bool) -> None:
        self.reducer, self.timeout, self.multiple = reducer, timeout, multiple
        self._lock = threading.Lock()
        self._depth = 0                 # nested watched calls (evaluate inside a fit callback)
        self._thread_id = 0             # the thread running the outermost watched call
        self._what = ""
        self._start = 0                 # allreduces completed when the outermost call began
        self._seen = 0                  # allreduces completed at the last progress
        self._since = 0.0               # monotonic time of the last progress
        self._warned = False            # the warning of the current stall is printed
        thread = threading.Thread(target=self._run, name="fastfit.distributed watchdog", daemon=True)
        thread.start()

    @contextlib.contextmanager
    def watching(self, what: str) -> Iterator[None]:
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                self._thread_id, self._what = threading.get_ident(), what
                self._start = self._seen = self.reducer.progress[0]
                self._since, self._warned = time.monotonic(), False
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1

    def restart_clock(self) -> None:
        """Progress that is no allreduce (the end of the broadcast at the start of fit)."""
        with self._lock:
            self._since, self._warned = time.monotonic(), False

    def _run(self) -> None:
        period = min(1.0, max(0.01, self.timeout / 10))
        while True:
            time.sleep(period)
            with self._lock:
                if self._depth == 0:
                    continue
                done, waiting_in, now = self.reducer.progress[0], self.reducer.progress[1], time.monotonic()
                if done != self._seen:
                    self._seen, self._since, self._warned = done, now, False
                    continue
                stalled = now - self._since
                step = done - self._start + 1
                abort = bool(waiting_in) and stalled >= self.timeout
                warn = not waiting_in and not self._warned and stalled >= self.timeout / 2
                if not (abort or warn):
                    continue
                self._warned = self._warned or warn
                message = self._aborting(stalled, step, waiting_in) if abort else self._late(stalled, step)
            try:
                sys.stderr.write(message)
                sys.stderr.flush()
            finally:
                if abort:
                    _let_launcher_forward_output()
                    if self.multiple:
                        self.reducer.comm.Abort(1)
                    os._exit(1)

    def _head(self, stalled: float) -> str:
        r = self.reducer
        return f"fastfit.distributed: rank {r.rank} of {r.size}, in {self._what}, {stalled:.1f} s since its last step: "

    def _aborting(self, stalled: float, step: int, waiting_in: int) -> str:
        where = (f"the allreduce of step {step} (training and validation batches counted)" if waiting_in == 1
                 else "the broadcast at the start of fit")
        return (f"{self._head(stalled)}waiting in {where} for the other ranks: one of them is hanging, has died "
                f"or did not make the same call with the same arrays. Aborting the job (timeout {self.timeout:g} "
                "s: fastfit.distributed.init(timeout=...) or FASTFIT_MPI_TIMEOUT; 0 turns it off).\n")

    def _late(self, stalled: float, step: int) -> str:
        frame = sys._current_frames().get(self._thread_id)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
        return (f"{self._head(stalled)}running its own code before the allreduce of step {step} while the other "
                f"ranks may wait for it (they abort the job after {self.timeout:g} s). Stack of the thread running "
                f"{self._what}:\n{stack}")


def watching(what: str) -> contextlib.AbstractContextManager[None]:
    """The context `fit` and `evaluate` run in: watched by the watchdog after `init()` with more than one rank
    (see `Watchdog`), else nothing."""
    return contextlib.nullcontext() if _watchdog is None else _watchdog.watching(what)


def timeout() -> float:
    """The watchdog's timeout in seconds (0: no watchdog: one process, or turned off)."""
    return 0.0 if _watchdog is None else _watchdog.timeout


def reducer() -> Reducer | None:
    """The engines' reducer after `init()` with more than one rank, else None (one process)."""
    return _reducer


def check_supported(what: str, instead: str) -> None:
    """Refuse `what` in distributed training, naming what to use `instead` (no silent per-rank training).

    Raises:
        ValueError: after `init()` with more than one rank.
    """
    if _reducer is not None:
        raise ValueError(f"distributed training (fastfit.distributed, {_reducer.size} ranks): {what} is not "
                         f"supported; {instead}")


# Callbacks that write files or print: rank 0 only. Every other callback runs on every rank: the logs are the
# same on all of them, so EarlyStopping, ReduceLROnPlateau, TerminateOnNaN... decide the same way everywhere.
_RANK_ZERO_ONLY = ("ModelCheckpoint", "CSVLogger", "TensorBoard", "ProgbarLogger", "RemoteMonitor",
                   "BackupAndRestore")


def rank_callbacks(callbacks: Any) -> Any:
    """The callbacks this rank runs: all of them on rank 0 (or in one process), the others without the
    callbacks that write files or print (`_RANK_ZERO_ONLY`). BackupAndRestore restores on rank 0 only:
    `sync_fit_start` then gives its state to every rank."""
    if _reducer is None or _reducer.rank == 0 or callbacks is None:
        return callbacks
    return [cb for cb in callbacks if not _writes_files(cb)]


def _writes_files(callback: Any) -> bool:
    """True for an instance of one of fastfit's `_RANK_ZERO_ONLY` callbacks (or of a subclass); by name, so that
    this module, which `fit` imports, does not import the callbacks (they import the models)."""
    return any(cls.__module__.startswith("fastfit.callbacks") and cls.__name__ in _RANK_ZERO_ONLY
               for cls in type(callback).__mro__)


def rank_verbose(verbose: Any) -> Any:
    """`verbose` on rank 0 (or in one process); 0 on the other ranks."""
    return verbose if _reducer is None or _reducer.rank == 0 else 0


def sync_fit_start(model: Any, start_epoch: int, skip_batches: int) -> tuple[int, int]:
    """At the start of a distributed `fit` (after `on_train_begin`, so after a restore on rank 0): give every
    rank rank 0's weights, optimizer state (iterations, slots), shuffling and dropout seeds, and resume point.
    Returns the resume point (epoch, batches done). In one process, the arguments unchanged."""
    if _reducer is None:
        return start_epoch, skip_batches
    from fastfit.engine import lowering
    comm = _reducer.comm
    optimizer = model.optimizer
    params = trained_params(lowering.model_ops(model))
    if not optimizer.is_built_for(params):
        optimizer.build(params)
    scalars = {key: getattr(optimizer, key) for key in ("iterations", "m_schedule", "lr")
               if hasattr(optimizer, key)}
    with _reducer.fit_broadcast():
        for array in model.weights:
            _bcast_array(comm, array)
        for slots in optimizer.slots:
            for array in slots:
                _bcast_array(comm, array)
        state = comm.bcast((_seeds(model), scalars, int(start_epoch), int(skip_batches)), root=0)
    if _watchdog is not None:
        _watchdog.restart_clock()
    seeds, scalars, start_epoch, skip_batches = state
    if seeds != _seeds(model):
        model._seed = seeds[0]
        for layer, seed in zip(model.layers, seeds[1]):
            if seed is not None:
                layer._op_seed = seed
        model._invalidate()  # the engine networks captured the old dropout seeds
    for key, value in scalars.items():
        setattr(optimizer, key, value)
    return start_epoch, skip_batches


def _seeds(model: Any) -> tuple:
    """The model's shuffling seed and its layers' dropout/noise seeds (what `fastfit_state` saves in files)."""
    return model._seed, [getattr(layer, "_op_seed", None) for layer in model.layers]


def _bcast_array(comm: Any, array: np.ndarray) -> None:
    if array.flags.c_contiguous:
        comm.Bcast(array, root=0)
    else:
        array[...] = comm.bcast(array if comm.Get_rank() == 0 else None, root=0)
