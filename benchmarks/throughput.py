"""Side-by-side throughput: every engine on one workload, interleaved per repeat, with the GEMM ceiling.

Per workload: build every engine's model and train one warm-up epoch each, then for every repeat time one
epoch of every engine and one measurement of the GEMM ceiling, rotating the engine order each round so
machine drift and turbo states hit all engines alike. Medians are reported.
"""
import statistics
import time

from .ceiling import GemmCeiling, call_overhead, samples_per_second
from .engines import PEER_ENGINES, make_trainer
from .isolate import Worker, WorkerError
from .workloads import WORKLOADS, make_data

_STATE = {}   # worker side: the one trainer or ceiling this worker process holds
# Idle BLAS/OpenMP threads spin for up to ~0.1 s after a call before they sleep (OpenBLAS THREAD_TIMEOUT,
# GOMP_SPINCOUNT); on 2 cores that would slow whichever engine runs next, so the parent waits this long.
SETTLE_S = 0.2


def _data(samples, seed):
    key = (samples, seed)
    if _STATE.get("data_key") != key:
        x, y, y_int = make_data(samples, seed)
        _STATE["data"], _STATE["data_key"] = {"x": x, "y": y, "y_int": y_int}, key
    return _STATE["data"]


def worker_build(engine, workload, samples, seed=0):
    """Worker side: build `engine`'s model of `workload` on the seeded data and train one warm-up epoch.

    Returns:
        the warm-up epoch's seconds.
    """
    _STATE.pop("trainer", None)
    _STATE["trainer"] = make_trainer(engine, WORKLOADS[workload], _data(samples, seed))
    return _timed(_STATE["trainer"].epoch)


def worker_epoch():
    """Worker side: returns `[wall seconds, CPU seconds of all threads]` of one training epoch."""
    c0 = time.process_time()
    wall = _timed(_STATE["trainer"].epoch)
    return [wall, time.process_time() - c0]


def worker_input_check():
    """Worker side: seconds of the input check one `fit` call of a fastfit engine makes (NaN/inf scan of x
    and y, before training), or None for other engines."""
    trainer = _STATE["trainer"]
    check = getattr(trainer, "input_check", None)
    return None if check is None else _timed(check)


def ceiling_build(workload, budget):
    """Worker side: prepare the GEMM ceiling of `workload`; returns the wrapper call overhead (s)."""
    overhead = call_overhead()
    _STATE["ceiling"] = GemmCeiling(WORKLOADS[workload], budget=budget, overhead=overhead)
    _STATE["ceiling"].measure()   # warm-up: threads started, pages touched
    return overhead


def ceiling_measure():
    """Worker side: one measurement of the prepared ceiling (see `GemmCeiling.measure`)."""
    return _STATE["ceiling"].measure()


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class Throughput:
    """Drives one worker process per engine (plus one for the ceiling), reused across workloads.

    Arguments:
        engines: available engine names, in table order.
        samples: rows of synthetic data (every worker makes the same seeded arrays).
        repeats: timed epochs per engine and workload (after one warm-up epoch).
        gemm_budget: seconds per GEMM shape and round for the ceiling.
        settle: seconds to wait before each timed call (see `SETTLE_S`).
        seed: data seed.
        log: function for progress lines.
        worker_env: `{engine: {variable: value}}` extra environment for that engine's worker.
    """

    def __init__(self, engines, samples, repeats, gemm_budget, settle=SETTLE_S, seed=0, log=print,
                 worker_env=None):
        self.worker_env = worker_env or {}
        self.engines, self.samples, self.repeats = list(engines), samples, repeats
        self.gemm_budget, self.settle, self.seed, self.log = gemm_budget, settle, seed, log
        self.workers = {}

    def _worker(self, name):
        if name not in self.workers or self.workers[name].proc.poll() is not None:
            self.workers[name] = Worker(env=self.worker_env.get(name))
        return self.workers[name]

    def close(self):
        """Stops every worker."""
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def preload(self):
        """Starts every worker and imports its engine's library, all workers at once."""
        names = ["ceiling", *self.engines]
        for name in names:
            self._worker(name).send("engines:preload", engine=name)
        for name in names:
            try:
                self.workers[name].receive()
            except WorkerError:
                pass          # the build call reports the error in the results

    def _timed_call(self, name, target, **kwargs):
        time.sleep(self.settle)
        return self._worker(name).call(target, **kwargs)

    def run(self, workload):
        """Benchmarks every engine on `workload`.

        Returns:
            dict with `ceiling` and `results` (per engine: `times`, `median_s`, `samples_per_s`,
            `fraction_of_ceiling`, `step_us`, `overhead_us`, `vs_reference`, `vs_best_peer`, or `error`).
        """
        overhead = self._worker("ceiling").call("throughput:ceiling_build", workload=workload.name,
                                                budget=self.gemm_budget)
        results = {}
        for name in self.engines:
            try:
                warm = self._worker(name).call("throughput:worker_build", engine=name,
                                               workload=workload.name, samples=self.samples, seed=self.seed)
                results[name] = {"times": [], "warmup_s": warm}
                self.log(f"  {workload.name:7s} {name:12s} warm-up epoch {warm:.2f} s")
            except WorkerError as exc:   # one broken engine must not stop the run
                results[name] = {"error": str(exc)}
                self.log(f"  {workload.name:7s} {name:12s} FAILED: {exc}")
        ceiling_runs = []
        order = [n for n in self.engines if "error" not in results[n]]
        for r in range(self.repeats):
            ceiling_runs.append(self._timed_call("ceiling", "throughput:ceiling_measure"))
            shift = r % len(order) if order else 0
            for name in order[shift:] + order[:shift]:
                if "error" in results[name]:
                    continue
                try:
                    wall, cpu = self._timed_call(name, "throughput:worker_epoch")
                    results[name]["times"].append(wall)
                    results[name].setdefault("cpu_times", []).append(cpu)
                    check = self._timed_call(name, "throughput:worker_input_check")
                    if check is not None:
                        results[name].setdefault("input_check_times", []).append(check)
                except WorkerError as exc:
                    results[name]["error"] = str(exc)
                    self.log(f"  {workload.name:7s} {name:12s} FAILED: {exc}")
        return self._summarise(workload, overhead, ceiling_runs, results)

    def _summarise(self, workload, overhead, ceiling_runs, results):
        step = statistics.median(c["step_seconds"] for c in ceiling_runs)
        ceil = {
            "step_seconds": step,
            "gflops": statistics.median(c["gflops"] for c in ceiling_runs),
            "samples_per_s": samples_per_second(workload, step),
            "call_overhead_s": overhead,
            "shapes": ceiling_runs[len(ceiling_runs) // 2]["shapes"],
        }
        for res in results.values():
            if res.get("times") and "error" not in res:
                res["median_s"] = statistics.median(res["times"])
                res["median_cpu_s"] = statistics.median(res["cpu_times"])   # > wall when multi-threaded
                res["samples_per_s"] = self.samples / res["median_s"]
                res["fraction_of_ceiling"] = res["samples_per_s"] / ceil["samples_per_s"]
                # time per full batch beyond the GEMMs of that batch
                res["step_us"] = res["median_s"] / self.samples * workload.batch_size * 1e6
                res["overhead_us"] = res["step_us"] - step * 1e6
                if res.get("input_check_times"):
                    # part of every timed fit(epochs=1) call: its share per full batch
                    res["input_check_us"] = (statistics.median(res["input_check_times"]) / self.samples
                                             * workload.batch_size * 1e6)
        _add_ratios(results)
        return {"name": workload.name, "title": workload.title, "batch_size": workload.batch_size,
                "samples": self.samples, "ceiling": ceil, "results": results}


def _add_ratios(results):
    """Adds `vs_reference` (to fastfit-ref) and `vs_best_peer` (to the fastest of torch/keras/sklearn)."""
    def rate(name):
        return results.get(name, {}).get("samples_per_s")

    ref = rate("fastfit-ref")
    peers = [rate(p) for p in PEER_ENGINES if rate(p)]
    best = max(peers) if peers else None
    for res in results.values():
        if res.get("samples_per_s"):
            res["vs_reference"] = res["samples_per_s"] / ref if ref else None
            res["vs_best_peer"] = res["samples_per_s"] / best if best else None
