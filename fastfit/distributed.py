"""Data-parallel training across processes on MPI (mpi4py): `import fastfit.distributed as dist; dist.init()`.

A script run with `mpiexec -n N python train.py` trains one model on N ranks. `batch_size` stays the global
batch: every rank draws the same seeded order and trains on its contiguous share of each global batch; one
`MPI_Allreduce` per step sums the gradients and the step's loss/metric sums, so the weights are those of a
one-process run. Rank 0 writes files and prints; every rank sees the same logs (docs/distributed.md).

This module holds the process-level side: joining MPI, the engine threads of a rank, the broadcast of the
model state at the start of `fit`, which callbacks run on which rank, and the address and handles of
`MPI_Allreduce` that the engines call (`Reducer`). The engines do the per-batch work (`Network.distribute`).
"""
from __future__ import annotations

import ctypes
import os
import sys
import traceback
from typing import Any

import numpy as np

from fastfit.contract.ops import trained_params

__all__ = ["init", "is_initialized", "rank", "size", "local_rank", "local_size", "threads_per_rank",
           "communicator", "barrier", "broadcast", "allreduce", "step_bytes"]

_comm: Any = None        # COMM_WORLD after init()
_local_rank = 0
_local_size = 1
_threads = 0
_reducer: Reducer | None = None


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError("fastfit.distributed needs mpi4py and an MPI library: pip install 'fastfit[mpi]' "
                          "(mpi4py and the mpich wheel), then run the script with `mpiexec -n 2 python "
                          "script.py`") from error
    return MPI


def init(threads: int | None = None) -> None:
    """Join MPI's COMM_WORLD (importing mpi4py initializes MPI) and make `fit` data-parallel across its ranks.

    Sets this rank's engine threads (the BLAS threads of the Cython core) to `threads`, or by default to the
    cores this rank may use: those of `os.sched_getaffinity` when the launcher pinned the rank to fewer cores
    than the node has, else the node's cores divided by the ranks on the node. Installs an excepthook that
    prints the traceback and aborts the whole job (`COMM_WORLD.Abort(1)`), so a failing rank never leaves the
    others waiting. Calling it again does nothing.

    Raises:
        ImportError: mpi4py is missing (install `fastfit[mpi]`).
        ValueError: `threads` is not a positive int.
    """
    global _comm, _local_rank, _local_size, _threads, _reducer
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"init: `threads` must be a positive int or None, got {threads!r}")
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
            comm.Abort(1)

    sys.excepthook = abort_job


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

    def c_entry(self, dtype: Any) -> tuple[int, bool, int, int, int, int]:
        """(MPI_Allreduce address, int handles?, communicator, datatype, MPI_SUM handles, MPI_IN_PLACE)."""
        return (self._function, self._int_handles, self._comm_handle, self._handles[np.dtype(dtype)], self._sum,
                self._in_place)

    def allreduce_in_place(self, buffer: np.ndarray) -> None:
        """Sum `buffer` over the ranks, in place (the reference engine's one call per batch)."""
        self.comm.Allreduce(self._mpi_in_place, buffer, op=self._mpi_sum)


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
    for array in model.weights:
        _bcast_array(comm, array)
    optimizer = model.optimizer
    params = trained_params(lowering.model_ops(model))
    if not optimizer.is_built_for(params):
        optimizer.build(params)
    for slots in optimizer.slots:
        for array in slots:
            _bcast_array(comm, array)
    scalars = {key: getattr(optimizer, key) for key in ("iterations", "m_schedule", "lr")
               if hasattr(optimizer, key)}
    state = comm.bcast((_seeds(model), scalars, int(start_epoch), int(skip_batches)), root=0)
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
