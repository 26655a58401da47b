"""Data-parallel training on two MPI ranks against one process (fastfit.distributed).

The runs are launched once per module (`mpi_cases.py`: one process, then `mpiexec -n 2`, then one process
resuming what two ranks backed up) and each test checks one property of their results: the same weights as one
process on the same global batches (within 1e-6 in float32), the same bits on both ranks, the same logs,
rank-0-only files, resume across rank counts, and a failing rank ending the whole job.
"""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastfit
from fastfit.core import compiled_core

pytest.importorskip("mpi4py", reason="distributed training needs mpi4py: pip install 'fastfit[mpi]'")
MPIEXEC = shutil.which("mpiexec") or (os.path.join(os.path.dirname(sys.executable), "mpiexec")
                                      if os.path.exists(os.path.join(os.path.dirname(sys.executable), "mpiexec"))
                                      else None)
if MPIEXEC is None:
    pytest.skip("distributed training tests need `mpiexec` (pip install 'fastfit[mpi]' brings MPICH's)",
                allow_module_level=True)

from mpi_cases import ENGINES, network_run  # noqa: E402 - after the skips (it imports mpi4py's users)

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "mpi_cases.py")
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastfit.__file__)))  # the fastfit under test
CASES = [f"{engine}_{name}" for engine in ("python", "cython")
         for name in ("sgd", "rmsprop", "adagrad", "adadelta", "adam", "amsgrad", "adamax", "nadam", "noise",
                      "penalties", "sparse", "float64", "empty_share", "callbacks")]


def _environment(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = "1"
    env.pop("FASTFIT_MPI_TIMEOUT", None)
    env.update(extra)
    return env


def _launch(args, ranks=None, timeout=240, **env):
    command = ([MPIEXEC, "-n", str(ranks)] if ranks else []) + [sys.executable, SCRIPT] + args
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_environment(**env))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("mpi"))
    for args, ranks in ((["single", out], None), (["dist", out], 2), (["resume", out], None)):
        run = _launch(args, ranks)
        assert run.returncode == 0, f"{args[0]} failed:\n{run.stdout}\n{run.stderr}"
    return out


def _weights(out, name, rank=0):
    return np.load(os.path.join(out, f"{name}_r{rank}.npz"))["weights"]


def _history(out, name, rank=0):
    with open(os.path.join(out, f"{name}_r{rank}.json")) as file:
        return json.load(file)


@pytest.mark.parametrize("case", CASES)
def test_two_ranks_train_the_one_process_weights(results, case):
    one, two = _weights(results, f"single_{case}"), _weights(results, f"dist_{case}")
    tolerance = 1e-12 if "float64" in case else 1e-6
    np.testing.assert_allclose(two, one, rtol=0, atol=tolerance)


@pytest.mark.parametrize("case", CASES)
def test_both_ranks_hold_the_same_weights_and_logs(results, case):
    np.testing.assert_array_equal(_weights(results, f"dist_{case}", 0), _weights(results, f"dist_{case}", 1))
    assert _history(results, f"dist_{case}", 0) == _history(results, f"dist_{case}", 1)


@pytest.mark.parametrize("case", CASES)
def test_logs_match_one_process(results, case):
    one, two = _history(results, f"single_{case}"), _history(results, f"dist_{case}")
    assert one.keys() == two.keys()
    for key in one:
        assert len(one[key]) == len(two[key]), key  # callbacks (EarlyStopping, ...) stopped at the same epoch
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)


class ThreadRanks:
    """`size` ranks as threads of this process: a reducer per rank whose allreduce (mpi4py-style for the reference
    engine, a C function pointer for the Cython engine) waits for every rank's buffer, sums them elementwise in
    rank order and writes the sum into each buffer: the per-rank partial sums added as MPICH's allreduce does
    (for two ranks one IEEE addition per element, which is commutative, so any order gives the same bits)."""

    _ALLREDUCE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                  ctypes.c_int, ctypes.c_int)
    _DTYPES = (np.float32, np.float64)  # the datatype handles of this fake MPI: indices into this tuple

    def __init__(self, size):
        self.size = size
        self._barrier = threading.Barrier(size)
        self._buffers = [None] * size
        self._function = self._ALLREDUCE(self._c_allreduce)  # kept alive as long as the ranks
        self._rank_of_thread = {}

    def reducer(self, rank):
        ranks = self

        class Reducer:
            def __init__(self):
                self.rank, self.size = rank, ranks.size

            def c_entry(self, dtype):
                address = ctypes.cast(ranks._function, ctypes.c_void_p).value
                return address, True, 0, ranks._DTYPES.index(np.dtype(dtype).type), 0, 1

            def allreduce_in_place(self, buffer):
                ranks._sum(rank, buffer)

        return Reducer()

    def run(self, work):
        """`work(rank)` on a thread per rank; their results in rank order."""
        results, errors = [None] * self.size, []

        def target(rank):
            self._rank_of_thread[threading.get_ident()] = rank
            try:
                results[rank] = work(rank)
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
                self._barrier.abort()

        threads = [threading.Thread(target=target, args=(rank,)) for rank in range(self.size)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results

    def _c_allreduce(self, send, receive, count, datatype, op, comm):
        dtype = self._DTYPES[datatype]
        buffer = np.ctypeslib.as_array(ctypes.cast(receive, ctypes.POINTER(np.ctypeslib.as_ctypes_type(dtype))),
                                       shape=(count,))
        self._sum(self._rank_of_thread[threading.get_ident()], buffer)
        return 0

    def _sum(self, rank, buffer):
        self._buffers[rank] = buffer
        self._barrier.wait()
        total = self._buffers[0].copy()
        for other in self._buffers[1:]:
            total += other
        self._barrier.wait()  # every rank has read every buffer
        buffer[:] = total


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("engine", ENGINES)
def test_two_ranks_are_bit_for_bit_the_engine_on_the_per_rank_partial_sums(results, engine, dtype):
    # The same engine network run as two ranks in one process, each rank's gradients and batch values summed
    # in rank order (ThreadRanks), gives exactly the bits of the MPI run: the allreduce adds nothing but the sum.
    # (One process on the whole batches differs in the last bits: the sums are grouped differently.)
    ranks = ThreadRanks(2)
    emulated = ranks.run(lambda rank: network_run(engine, np.dtype(dtype), ranks.reducer(rank)))
    for rank in (0, 1):
        with np.load(os.path.join(results, f"network_{engine}_{dtype}_r{rank}.npz")) as mpi:
            assert len(mpi.files) == len(emulated[rank])
            for index, array in enumerate(emulated[rank]):
                np.testing.assert_array_equal(mpi[f"arr_{index}"], array, err_msg=f"rank {rank}, array {index}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_rank_engines_agree_as_in_one_process(results, dtype):
    # The engines are not bit-identical to each other (tests/reference/test_ref_parity.py: float64 within
    # 1e-9, float32 within 2e-4): neither are they on two ranks, within the same tolerances.
    tolerance = dict(rtol=1e-9, atol=1e-10) if dtype == "float64" else dict(rtol=2e-4, atol=2e-5)
    with np.load(os.path.join(results, f"network_python_{dtype}_r0.npz")) as reference, \
            np.load(os.path.join(results, f"network_cython_{dtype}_r0.npz")) as cython:
        for key in reference.files:
            np.testing.assert_allclose(cython[key], reference[key], **tolerance, err_msg=key)


def test_rank_zero_writes_the_files(results):
    for engine in ("python", "cython"):
        assert os.path.exists(os.path.join(results, f"{engine}_log_r0.csv"))
        assert not os.path.exists(os.path.join(results, f"{engine}_log_r1.csv"))


def test_a_checkpoint_of_two_ranks_loads_in_one_process(results):
    np.testing.assert_array_equal(_weights(results, "resume_loaded_ckpt_dist"),
                                  _weights(results, "dist_after_two_epochs"))


@pytest.mark.parametrize("name", ["dist_resumed_1to2", "resume_resumed_2to1", "dist_continued_1to2",
                                  "resume_continued_2to1"])
def test_resume_with_another_number_of_ranks(results, name):
    np.testing.assert_allclose(_weights(results, name), _weights(results, "single_full"), rtol=0, atol=1e-6)


def test_a_failing_rank_ends_the_job_with_its_traceback():
    run = _launch(["fail"], ranks=2, timeout=120)
    assert run.returncode != 0
    assert "RuntimeError: rank 1 fails on purpose" in run.stderr
    assert "Traceback" in run.stderr


@pytest.mark.parametrize("engine", ENGINES)
def test_a_rank_that_stops_taking_part_ends_the_job_after_the_timeout(engine):
    # Rank 1 sleeps for 120 s in a callback after the first epoch; rank 0 waits in the next step's allreduce.
    # With FASTFIT_MPI_TIMEOUT=3, rank 1 warns (with its stack) after 1.5 s and rank 0 aborts the job after 3 s:
    # the launch ends long before the sleep would (else `subprocess.run` raises TimeoutExpired at 60 s).
    run = _launch(["hang", engine], ranks=2, timeout=60, FASTFIT_MPI_TIMEOUT="3")
    assert run.returncode != 0
    assert "rank 0 of 2, in fit" in run.stderr
    assert "waiting in the allreduce of step" in run.stderr and "Aborting the job (timeout 3 s" in run.stderr
    assert "rank 1 of 2, in fit" in run.stderr and "running its own code" in run.stderr
    assert "time.sleep(120)" in run.stderr  # the stack of rank 1 shows where it is


def test_a_killed_rank_ends_the_job():
    # MPICH's launcher (Hydra) ends every rank when one dies, with the signal as exit status.
    run = _launch(["kill"], ranks=2, timeout=60)
    assert run.returncode != 0
    assert "signal 9" in run.stdout + run.stderr or run.returncode in (-signal.SIGKILL, signal.SIGKILL)


def test_unsupported_combinations_raise_in_one_rank(monkeypatch):
    # A one-process check of the refusals: a reducer of two ranks, without MPI.
    from fastfit import distributed
    from fastfit.layers import BatchNormalization, Dense
    from fastfit.models import Sequential

    class TwoRanks:
        rank, size = 0, 2

    monkeypatch.setattr(distributed, "_reducer", TwoRanks())
    x, y = np.zeros((8, 4), "float32"), np.zeros((8, 2), "float32")
    model = Sequential([Dense(2, input_dim=4, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    with pytest.raises(ValueError, match="fit_generator is not supported; load the data"):
        model.fit_generator(iter([(x, y)]), steps_per_epoch=1)
    with pytest.raises(ValueError, match="generator, Sequence or on-disk array is not supported"):
        model.fit(iter([(x, y)]), steps_per_epoch=1)
    custom = Sequential([Dense(2, input_dim=4, activation="softmax")])
    custom.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=[lambda t, p: (t - p).sum(-1)])
    with pytest.raises(ValueError, match="custom metric"):
        custom.fit(x, y, verbose=0)
    for engine in ("python", "cython") if compiled_core() else ("python",):
        bn = Sequential([Dense(2, input_dim=4), BatchNormalization()])
        bn.compile(loss="mse", optimizer="sgd", engine=engine)
        with pytest.raises(ValueError, match="BatchNormalization"):
            bn.fit(x, y, verbose=0)
