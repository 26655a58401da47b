"""Data-parallel training on two MPI ranks against one process (fastfit.distributed).

The runs are launched once per module (`mpi_cases.py`: one process, then `mpiexec -n 2`, then one process
resuming what two ranks backed up) and each test checks one property of their results: the same weights as one
process on the same global batches (within 1e-6 in float32), the same bits on both ranks, the same logs,
rank-0-only files, resume across rank counts, and a failing rank ending the whole job.
"""
import json
import os
import shutil
import subprocess
import sys

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

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "mpi_cases.py")
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastfit.__file__)))  # the fastfit under test
CASES = [f"{engine}_{name}" for engine in ("python", "cython")
         for name in ("sgd", "rmsprop", "adagrad", "adadelta", "adam", "amsgrad", "adamax", "nadam", "noise",
                      "penalties", "sparse", "float64", "empty_share", "callbacks")]


def _environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def _launch(args, ranks=None, timeout=240):
    command = ([MPIEXEC, "-n", str(ranks)] if ranks else []) + [sys.executable, SCRIPT] + args
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_environment())


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
