"""Data-parallel training across processes on MPI (mpi4py): `import fastfit.distributed as dist; dist.init()`.

A script run with `mpiexec -n N python train.py` trains one model on N ranks. `batch_size` stays the global
batch: every rank draws the same seeded order and trains on its contiguous share of each global batch; one
`MPI_Allreduce` per step sums the gradients and the step's loss/metric sums, so the weights are those of a
one-process run. Rank 0 writes files and prints; every rank sees the same logs (docs/distributed.md).
"""
from __future__ import annotations

from typing import Any

__all__ = ["init", "is_initialized", "rank", "size", "local_rank", "local_size", "threads_per_rank",
           "communicator", "barrier", "broadcast", "allreduce", "step_bytes"]


def init(threads: int | None = None) -> None:
    """Join MPI's COMM_WORLD (importing mpi4py initializes MPI) and make `fit` data-parallel across its ranks.

    Sets this rank's engine threads (BLAS threads) to `threads`, or by default to the cores this rank may use:
    `os.sched_getaffinity` when the launcher pinned the rank, else the node's cores divided by the ranks on the
    node. Installs an excepthook that prints the traceback and aborts the whole job (`COMM_WORLD.Abort(1)`), so
    a failing rank never leaves the others waiting. Calling it again does nothing.

    Raises:
        ImportError: mpi4py is missing (install `fastfit[mpi]`).
    """
    raise NotImplementedError


def is_initialized() -> bool:
    """True after `init()` in this process."""
    raise NotImplementedError


def rank() -> int:
    """This process's rank in COMM_WORLD (0 without `init()`)."""
    raise NotImplementedError


def size() -> int:
    """The number of ranks (1 without `init()`)."""
    raise NotImplementedError


def local_rank() -> int:
    """This rank's index among the ranks on its node (0 without `init()`)."""
    raise NotImplementedError


def local_size() -> int:
    """The number of ranks on this node (1 without `init()`)."""
    raise NotImplementedError


def threads_per_rank() -> int:
    """The engine threads `init()` gave this rank."""
    raise NotImplementedError


def communicator() -> Any:
    """The mpi4py communicator fit uses (COMM_WORLD). Raises RuntimeError before `init()`."""
    raise NotImplementedError


def barrier() -> None:
    """Wait until every rank reaches this point (no-op without `init()`)."""
    raise NotImplementedError


def broadcast(value: Any, root: int = 0) -> Any:
    """`value` of rank `root` on every rank: a NumPy array (in place, returned) or any picklable object."""
    raise NotImplementedError


def allreduce(value: Any, average: bool = False) -> Any:
    """The sum (or mean with `average=True`) over ranks of a number or NumPy array (a new value)."""
    raise NotImplementedError


def step_bytes(model: Any) -> int:
    """The bytes one training step of `model` sends through its one allreduce: every trainable parameter's
    gradient in the model dtype, plus the step's loss/metric sums (the buffer `fit` reduces)."""
    raise NotImplementedError
