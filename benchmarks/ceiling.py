"""The hardware ceiling: how fast the GEMMs of one training step run on their own.

Each GEMM shape a workload needs per step (forward, dW, dx per Dense layer) is timed in a tight loop through
SciPy's BLAS `sgemm` (the same library the Cython engine calls), with the operands already in the layout the
engine uses, so no copies are made. The Python call overhead of the f2py wrapper is measured on a 1x1x1
GEMM and subtracted. Each shape is timed with BLAS on one thread and on all threads and the faster counts:
on small shapes (W1, W2) OpenBLAS's thread hand-off costs more than the second core gains, and an engine
is free to pick either per GEMM. "Ceiling samples/s" is the batch size divided by the summed GEMM time of one step: the
throughput of an engine that did nothing but its matrix products.
"""
import contextlib
import time

import numpy as np
from scipy.linalg.blas import sgemm

from .workloads import gemm_shapes


def _operands(m, n, k, kind, rng):
    """Fortran-ordered operands computing the row-major product (m,k)@(k,n) as its transpose.

    Returns `(a, b, c, trans_a, trans_b)` for `sgemm(1, a, b, 0, c, trans_a, trans_b, overwrite_c=1)`.
    """
    def f(rows, cols):
        return np.asfortranarray(rng.random((rows, cols), dtype=np.float32))

    c = np.zeros((n, m), dtype=np.float32, order="F")
    if kind == "forward":   # Y^T = W^T X^T
        return f(n, k), f(k, m), c, 0, 0
    if kind == "dW":        # dW^T = dY^T X, X stored row-major
        return f(n, k), f(m, k), c, 0, 1
    if kind == "dx":        # dx^T = W dY^T, W stored row-major
        return f(k, n), f(k, m), c, 1, 0
    raise ValueError(f"kind must be 'forward', 'dW' or 'dx', got {kind!r}")


def _loop_time(a, b, c, ta, tb, reps):
    """Returns the mean seconds per call over `reps` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(reps):
        sgemm(1.0, a, b, 0.0, c, ta, tb, 1)
    return (time.perf_counter() - t0) / reps


def call_overhead(reps=20000):
    """Returns the seconds one f2py `sgemm` call costs beyond its arithmetic (1x1x1 GEMM)."""
    one = np.ones((1, 1), dtype=np.float32, order="F")
    c = np.zeros((1, 1), dtype=np.float32, order="F")
    _loop_time(one, one, c, 0, 0, 1000)
    return min(_loop_time(one, one, c, 0, 0, reps) for _ in range(3))


def _one_thread():
    """Context manager limiting BLAS to one thread (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


class GemmCeiling:
    """Times the per-step GEMMs of one workload; call `measure()` once per benchmark round.

    Arguments:
        workload: a `Workload`.
        budget: seconds to spend per shape and round (the loop length is chosen from a first probe).
        overhead: seconds per wrapper call to subtract (from `call_overhead()`).
        seed: seed for the operand values.
        kinds: the GEMM kinds to time (default all: forward, dW, dx; `('forward',)` for inference).
    """

    def __init__(self, workload, budget=0.05, overhead=0.0, seed=0, kinds=None):
        rng = np.random.default_rng(seed)
        self.workload = workload
        self.overhead = overhead
        self.shapes = [s for s in gemm_shapes(workload) if kinds is None or s[3] in kinds]
        self.cases = []
        for m, n, k, kind in self.shapes:
            ops = _operands(m, n, k, kind, rng)
            probe = _loop_time(*ops, reps=3)
            reps = max(3, int(budget / max(probe, 1e-7)))
            self.cases.append((ops, reps))

    def measure(self):
        """Times every shape once.

        Returns:
            dict with `step_seconds` (summed GEMM time of one step), `gflops` (sustained rate over the
            step's GEMMs) and `shapes` (per shape: m, n, k, kind, seconds, gflops).
        """
        per_shape = []
        for (m, n, k, kind), (ops, reps) in zip(self.shapes, self.cases):
            all_threads = max(_loop_time(*ops, reps=reps) - self.overhead, 1e-9)
            with _one_thread():
                one_thread = max(_loop_time(*ops, reps=reps) - self.overhead, 1e-9)
            sec = min(all_threads, one_thread)
            per_shape.append({"m": m, "n": n, "k": k, "kind": kind, "seconds": sec,
                              "seconds_1_thread": one_thread, "seconds_all_threads": all_threads,
                              "gflops": 2.0 * m * n * k / sec / 1e9})
        step = sum(s["seconds"] for s in per_shape)
        flops = sum(2.0 * s["m"] * s["n"] * s["k"] for s in per_shape)
        return {"step_seconds": step, "gflops": flops / step / 1e9, "shapes": per_shape}


def samples_per_second(workload, step_seconds):
    """Returns the throughput if a step cost only its GEMMs."""
    return workload.batch_size / step_seconds
