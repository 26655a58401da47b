"""The distributed benchmark section (issue 22): the communication cost model's arithmetic, its report, and a
tiny run of the section (no timing asserts)."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import distributed as dist  # noqa: E402
from benchmarks import report, run as bench_run  # noqa: E402
from benchmarks.engines import availability  # noqa: E402
from benchmarks.workloads import WORKLOADS  # noqa: E402


def test_gradient_bytes_are_four_per_parameter():
    assert dist.gradient_bytes(WORKLOADS["w3"].n_params()) == 4 * (784 * 1024 + 1024 + 1024 * 1024 + 1024 + 10250)
    assert dist.gradient_bytes(10, bytes_per_param=8) == 80
    with pytest.raises(ValueError, match="n_params"):
        dist.gradient_bytes(0)


def test_ring_allreduce_sends_two_p_minus_one_over_p_of_the_buffer():
    assert dist.ring_bytes_sent(1000, 1) == 0
    assert dist.ring_bytes_sent(1000, 2) == 1000
    assert dist.ring_bytes_sent(1000, 4) == 1500
    assert dist.ring_bytes_sent(1000, 128) == pytest.approx(2 * 127 / 128 * 1000)
    with pytest.raises(ValueError, match="ranks"):
        dist.ring_bytes_sent(1000, 0)


def test_allreduce_time_is_latency_plus_bandwidth_term():
    # the ring over p ranks: 2 (p - 1) latency terms and 2 (p - 1) / p of the buffer through each link
    assert dist.allreduce_seconds(8e6, 8, 1e-5, 1e9) == pytest.approx(14e-5 + 14e-3)
    assert dist.allreduce_seconds(8e6, 1, 1e-5, 1e9) == 0
    assert dist.Network("x", 10, 0).bytes_per_s == 1.25e9
    with pytest.raises(ValueError, match="bytes_per_s"):
        dist.allreduce_seconds(8, 2, 1e-6, 0)


def test_prediction_adds_communication_to_compute():
    row = dist.predict(compute_s=0.03, nbytes=4e6, ranks=4, alpha_s=0.0, bytes_per_s=1e9)
    comm = 2 * 3 / 4 * 4e6 / 1e9  # the bandwidth term alone: alpha is 0 here
    assert row["comm_s"] == pytest.approx(comm)
    assert row["step_s"] == pytest.approx(0.03 + comm)
    assert row["efficiency"] == pytest.approx(0.03 / 0.036)
    # the global batch fixed: each node computes a quarter of it
    assert row["fixed_global_step_s"] == pytest.approx(0.0075 + comm)
    assert row["fixed_global_efficiency"] == pytest.approx(0.03 / 4 / row["fixed_global_step_s"])
    with pytest.raises(ValueError, match="compute_s"):
        dist.predict(0, 1, 2, 0, 1)


def test_cost_model_table_covers_models_networks_and_nodes():
    m = dist.cost_model({"w2b128": 0.002, "w3": 0.03}, {"w3": 0.005}, local_alpha_s=1e-6)
    assert len(m["predictions"]) == 2 * len(dist.NETWORKS) * len(dist.NODES)
    assert m["models"]["w3"]["bytes"] == 4 * WORKLOADS["w3"].n_params()
    assert m["models"]["w2b128"]["allreduce_2_ranks_s"] is None
    fast = [r for r in m["predictions"] if r["workload"] == "w3" and r["network"] == dist.NETWORKS[1].name]
    assert [r["nodes"] for r in fast] == list(dist.NODES)
    assert fast[0]["alpha_s"] == pytest.approx(1e-6 + dist.NETWORKS[1].latency_s)
    # more nodes: more messages and a larger share of the buffer sent, so lower efficiency
    assert fast[0]["efficiency"] > fast[1]["efficiency"] > fast[2]["efficiency"]
    lines = dist.cost_model_lines(m)
    assert any(line.strip().startswith("w3 ") and "5.000 ms" in line for line in lines)
    assert sum("InfiniBand" in line for line in lines) == len(dist.NODES) * 2
    assert dist.two_rank_scaling(m) == pytest.approx(0.03 / (0.015 + 0.005))
    assert dist.two_rank_scaling({"error": "x"}) is None
    md = dist.markdown_lines(m)
    assert sum(line.startswith("| w3 |") for line in md) == 1 + len(dist.NETWORKS) * len(dist.NODES)
    assert "| w3 | 1,863,690 | 7.45 MB | 5.00 ms | 30.00 ms |" in md


def test_rank_share_splits_rows_as_fastfit_splits_a_global_batch():
    # fastfit's split of a global batch: rank r takes rows n r // p to n (r + 1) // p
    assert [dist.rank_share(256, r, 2) for r in range(2)] == [(0, 128), (128, 256)]
    assert [dist.rank_share(7, r, 3) for r in range(3)] == [(0, 2), (2, 4), (4, 7)]
    assert dist.rank_share(1, 0, 2) == (0, 0)          # a rank whose share is empty
    for n, p in ((15360, 2), (1001, 4), (3, 5)):
        shares = [dist.rank_share(n, r, p) for r in range(p)]
        assert shares[0][0] == 0 and shares[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(shares, shares[1:]))
    with pytest.raises(ValueError, match="rank"):
        dist.rank_share(10, 2, 2)
    with pytest.raises(ValueError, match="rank"):
        dist.rank_share(10, 0, 0)


def test_design_limit_adds_the_allreduce_to_the_ceiling_step():
    m = dist.cost_model({"w3": 0.0746}, {"w3": 0.003}, local_alpha_s=1e-6)
    assert dist.design_limit(m, 0.0416) == pytest.approx(0.0746 / (0.0416 + 0.003))
    assert dist.design_limit(m, None) is None
    assert dist.design_limit(dist.cost_model({"w3": 0.0746}, {}, 0.0), 0.0416) is None   # no MPI: no allreduce
    assert dist.design_limit({"error": "x"}, 0.0416) is None


def _section(scaling_rate, torch_rate):
    jobs = {"fastfit 1x1": {"ranks": 1, "samples_per_s": 1000.0},
            "fastfit 2x1": {"ranks": 2, "samples_per_s": scaling_rate},
            "torch 1x1": {"ranks": 1, "error": "torch not installed"},
            "torch 2x1": {"ranks": 2, "samples_per_s": torch_rate}}
    return {"title": "W3", "batch_size": 256, "samples": 1024, "repeats": 1, "jobs": jobs,
            "scaling": scaling_rate / 1000, "torch_scaling": None, "vs_torch_ddp": scaling_rate / torch_rate,
            "cost_model": {"error": "needs the fastfit 1x1 job"}}


def test_report_lines_and_targets():
    d = _section(1900.0, 1000.0)
    text = "\n".join(dist.report_lines(d))
    assert "1.90x one process" in text and "torch not installed" in text and "needs the fastfit 1x1 job" in text
    assert [t[3] for t in dist.targets(d)] == [True, True]
    assert [t[3] for t in dist.targets(_section(1500.0, 2000.0))] == [False, False]
    assert dist.targets({"error": "x"}) == [] and dist.report_lines(None) == []
    names = [t["name"] for t in report.targets({"distributed": d})]
    assert "w3 2 ranks vs 1 rank (1 thread each)" in names


def test_report_puts_the_ceiling_beside_the_scaling_and_states_the_design_limit():
    d = _section(1520.0, 1000.0)
    d["jobs"][dist.CEILING_LABEL] = {"ranks": 2, "samples_per_s": 1790.0}
    d["ceiling"], d["ceiling_step_s"] = 1.79, 0.0416
    d["cost_model"] = dist.cost_model({"w3": 0.0746}, {"w3": 0.003}, local_alpha_s=1e-6)
    d["design_limit"] = dist.design_limit(d["cost_model"], d["ceiling_step_s"])
    lines = dist.report_lines(d)
    scaling = [line for line in lines if "2 ranks / 1 rank" in line]
    assert scaling == ["  fastfit 2 ranks / 1 rank: 1.52x (target >= 1.8x); "
                       "ceiling (2 independent processes, no communication): 1.79x"]
    limit = [line for line in lines if "issue's design" in line]
    assert len(limit) == 1 and "at most 1.67x" in limit[0]
    assert "74.6 ms" in limit[0] and "41.6 ms" in limit[0] and "3.00 ms" in limit[0]
    # the ceiling has no row of its own in the table of jobs, and no target
    assert not any(line.lstrip().startswith(("ceiling 2x1", "fastfit 2 independent")) for line in lines)
    assert [t[0] for t in dist.targets(d)] == [t[0] for t in dist.targets(_section(1520.0, 1000.0))]
    # a failed ceiling job says why on the same line; without a 2-rank figure the ceiling stands alone
    d["jobs"][dist.CEILING_LABEL] = {"ranks": 2, "error": "WorkerError: boom"}
    d["scaling"] = d["ceiling"] = d["design_limit"] = None
    text = "\n".join(dist.report_lines(d))
    assert "  ceiling (2 independent processes, no communication): WorkerError: boom" in text
    assert "issue's design" not in text


def test_distributed_section_is_not_in_the_default_set():
    assert "distributed" not in bench_run.parse_args([]).sections
    assert bench_run.parse_args(["--sections", "distributed"]).sections == ["distributed"]


def test_quick_run_of_the_section():
    if not availability("fastfit")[0]:
        pytest.skip("the Cython engine is not built")
    d = dist.run(samples=512, repeats=1, engines=("fastfit",), quick=True, settle=0.0, log=lambda line: None)
    solo, pair = d["jobs"]["fastfit 1x1"], d["jobs"]["fastfit 2x1"]
    assert solo["samples_per_s"] > 0 and len(solo["times"]) == 1
    # until fastfit.distributed works, the 2-rank job says so instead of failing the run
    assert pair.get("samples_per_s", 0) > 0 or pair["error"].startswith(
        ("fastfit.distributed not available", "mpi4py not installed", "mpiexec not found"))
    model = d["cost_model"]
    assert set(model["models"]) == set(dist.MODEL_WORKLOADS)
    assert all(r["step_s"] > 0 for r in model["models"].values())
    if dist.mpi_missing() is None:
        assert all(r["allreduce_2_ranks_s"] > 0 for r in model["models"].values())
    assert "torch 2x1" not in d["jobs"]
    # the ceiling job (two plain fastfit processes on half the rows each) runs without MPI
    ceiling = d["jobs"][dist.CEILING_LABEL]
    assert ceiling["ranks"] == 2 and ceiling["samples_per_s"] > 0 and len(ceiling["times"]) == 1
    assert d["ceiling"] == pytest.approx(ceiling["samples_per_s"] / solo["samples_per_s"])
    assert d["ceiling_step_s"] == pytest.approx(256 / ceiling["samples_per_s"])
    if dist.mpi_missing() is None:
        assert d["design_limit"] > 0
