"""Smoke tests of the benchmark suite: it runs on tiny sizes and writes the expected JSON (no timing asserts)."""
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import run as bench_run  # noqa: E402
from benchmarks.engines import availability  # noqa: E402
from benchmarks.isolate import Worker, WorkerError  # noqa: E402
from benchmarks.workloads import WORKLOADS, flops_per_step, gemm_shapes, make_data  # noqa: E402

RESULT_KEYS = {"times", "median_s", "samples_per_s", "fraction_of_ceiling", "step_us", "overhead_us",
               "vs_reference", "vs_best_peer"}


def test_workload_shapes_and_flops():
    w2 = WORKLOADS["w2b32"]
    assert w2.widths == [784, 128, 10]
    # the first layer needs no input gradient: forward+dW for layer 1, forward+dW+dx for layer 2
    assert [kind for *_, kind in gemm_shapes(w2)] == ["forward", "dW", "forward", "dW", "dx"]
    assert flops_per_step(w2) == 2 * 32 * (2 * 784 * 128 + 3 * 128 * 10)
    assert WORKLOADS["w1"].n_params() == 784 * 10 + 10


def test_make_data_is_seeded_float32_and_learnable():
    x, y, y_int = make_data(64, seed=3)
    x2, _, y_int2 = make_data(64, seed=3)
    assert x.dtype == np.float32 and x.shape == (64, 784) and x.flags.c_contiguous
    assert y.shape == (64, 10) and np.array_equal(y.argmax(1), y_int)
    assert np.array_equal(x, x2) and np.array_equal(y_int, y_int2)
    assert len(np.unique(y_int)) > 1
    with pytest.raises(ValueError, match="n_samples"):
        make_data(0)


def test_bad_command_line_is_rejected(capsys):
    with pytest.raises(SystemExit):
        bench_run.parse_args(["--engines", "tensorflow"])
    assert "--engines must be a comma-separated list" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_run.parse_args(["--repeats", "0"])
    with pytest.raises(ValueError, match="engine must be one of"):
        availability("caffe")


def test_worker_reports_errors_and_survives():
    with Worker() as worker:
        with pytest.raises(WorkerError, match="engine must be one of"):
            worker.call("engines:make_trainer", engine="caffe", workload=None, data=None)
        # the worker is still usable after a failed call
        assert worker.call("ceiling:call_overhead", reps=10) > 0


def test_quick_run_writes_expected_json(tmp_path):
    out = tmp_path / "bench.json"
    code = bench_run.main(["--quick", "--engines", "fastfit,fastfit-ref", "--workloads", "w1,w2b32",
                           "--json", str(out)])
    assert code == 0
    res = json.loads(out.read_text())
    assert res["meta"]["quick"] is True and res["meta"]["samples"] > 0
    assert {"cpu", "cores", "versions", "blas", "fastfit_commit"} <= set(res["machine"])
    assert [w["name"] for w in res["workloads"]] == ["w1", "w2b32"]
    for w in res["workloads"]:
        assert {"samples_per_s", "gflops", "step_seconds", "shapes"} <= set(w["ceiling"])
        assert w["ceiling"]["samples_per_s"] > 0
        for name, engine in res["engines"].items():
            if not engine["available"]:
                assert engine["note"] and name not in w["results"]
                continue
            r = w["results"][name]
            assert "error" in r or RESULT_KEYS <= set(r), (name, r)
    for t in res["targets"]:
        assert {"name", "value", "target", "met"} <= set(t)
    if availability("fastfit-ref")[0]:
        cb = res["callbacks"]
        assert "error" in cb or {"standard_pct", "verbose1_pct", "batch_hook_us", "hook_calls"} <= set(cb)
        for g in res["gil"]:
            assert "error" in g or {"counter_kept", "train_kept", "two_thread_speedup"} <= set(g)
        mem = res["memory"]
        assert "error" in mem or {"peak_rss", "budget", "within_budget", "copies_dataset"} <= set(mem)
        ck = res["checkpoint"]
        assert "error" in ck or ck["median_ms"] > 0
        assert "streaming" not in res  # only when asked for: it writes a large file


def test_quick_streaming_section(tmp_path):
    if not availability("fastfit-ref")[0]:
        pytest.skip("fastfit not importable")
    out = tmp_path / "stream.json"
    assert bench_run.main(["--quick", "--sections", "streaming", "--engines", "fastfit", "--workloads", "w1",
                           "--stream-dir", str(tmp_path), "--json", str(out)]) == 0
    st = json.loads(out.read_text())["streaming"]
    assert "error" not in st, st
    assert st["bound"]["growth"] >= 0 and st["bound"]["bound"] >= 2 * st["bound"]["buffer_size"]
    assert st["bound"]["h5py"]["epoch_s"] > 0 and "within_bound" in st["bound"]["h5py"]
    w1 = st["speed"]["workloads"]["w1"]
    assert w1["memmap_warm_ratio"] > 0 and w1["h5py_contiguous_warm_ratio"] > 0
    assert w1["h5py_reader_cpu_s"] > 0 and 0 < w1["h5py_ceiling_ratio"] <= 1
    assert st["sequence"]["threads_ratio"] > 0 and st["sequence"]["processes_ratio"] > 0
    assert os.listdir(tmp_path) == ["stream.json"]  # the data files are removed


def test_cores_ceiling_is_the_rate_the_cores_allow_capped_at_the_in_memory_rate():
    from benchmarks.streaming import cores_ceiling
    assert cores_ceiling(2, 0.1, 0.25) == pytest.approx(0.8)  # 2 cores x 100 ms / 250 ms of CPU
    assert cores_ceiling(2, 0.1, 0.15) == 1.0  # the reading fits in the spare core time
