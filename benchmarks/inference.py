"""The forward-only paths: predict and evaluate over the whole data, one-row latency, the validation pass
inside `fit`, and how much speed training and predict keep when another process takes a core.

One worker process per engine (fastfit, torch, keras), like the throughput section. Per workload (W2 =
784-128-10 and W3 = 784-1024-1024-10, float32, untrained weights; the arithmetic does not depend on them):

* fastfit: `predict(x)` and `evaluate(x, y)` with the default batch_size (32, what Keras users pass by
  habit), and `predict(x[:1])`;
* torch: eager `nn.Sequential` under `torch.no_grad()`: the whole array in one call, in 32-row chunks, and one
  row; `torch.set_num_threads(cores)`;
* keras: Keras 3 `predict(x, verbose=0)` (batch_size 32) and `predict(x[:1])` on the backend in KERAS_BACKEND
  (torch when unset, as elsewhere in the suite);
* the forward-only GEMM ceiling: the forward GEMMs of a 1024-row block (`ceiling.GemmCeiling`, BLAS on one
  thread or all, the faster) scaled to the rows predicted. 1024 rows is fastfit's forward block
  (`fastfit.engine.lowering.FORWARD_BLOCK_ROWS`); a bigger block is not faster in the GEMM alone.

fastfit only: the share of a W2 (batch 32) epoch with `validation_split=0.1` spent in the validation pass
(between `on_test_begin` and `on_test_end`), and (not with `--quick`) with one spinning process beside it,
the speed a W2 epoch and a W2 predict keep (quiet time / busy time), PyTorch's beside it.
"""
import dataclasses
import os
import statistics
import subprocess
import sys
import time

from .ceiling import GemmCeiling, call_overhead
from .workloads import N_CLASSES, WORKLOADS, make_data

INFERENCE_WORKLOADS = ("w2b32", "w3")
BLOCK_ROWS = 1024
ONE_ROW_CALLS = 2000


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _one_row_us(fn, calls):
    """Median over 5 rounds of the mean microseconds per call of `fn` (after a warm-up round)."""
    for _ in range(min(calls, 200)):
        fn()
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(rounds)


def forward_ceiling_seconds(workload, rows, budget):
    """Seconds the forward GEMMs of `rows` rows take at the GEMM ceiling (1024-row blocks)."""
    block = dataclasses.replace(workload, batch_size=BLOCK_ROWS)
    measured = GemmCeiling(block, budget=budget, overhead=call_overhead(), kinds=("forward",)).measure()
    return measured["step_seconds"] * rows / BLOCK_ROWS


class _Spinner:
    """One busy process (a pure-Python loop) beside the measurement, for the 'one core busy' numbers."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def _fastfit(workload, data, repeats, quick):
    from .engines import FastfitTrainer
    trainer = FastfitTrainer(workload, data)
    model, x, y = trainer.model, data["x"], data["y"]
    model.predict(x)
    model.evaluate(x, y, verbose=0)
    result = {"predict_s": _median_time(lambda: model.predict(x), repeats),
              "evaluate_s": _median_time(lambda: model.evaluate(x, y, verbose=0), repeats)}
    one = x[:1]
    result["one_row_us"] = _one_row_us(lambda: model.predict(one), 200 if quick else ONE_ROW_CALLS)
    if workload.name != "w2b32":
        return result
    from fastfit.callbacks import Callback

    class ValidationClock(Callback):
        def __init__(self):
            super().__init__()
            self.seconds = 0.0

        def on_test_begin(self, logs=None):
            self.t0 = time.perf_counter()

        def on_test_end(self, logs=None):
            self.seconds += time.perf_counter() - self.t0

    shares = []
    for _ in range(repeats + 1):
        clock = ValidationClock()
        t0 = time.perf_counter()
        trainer.epoch(validation_split=0.1, callbacks=[clock])
        shares.append(clock.seconds / (time.perf_counter() - t0))
    result["validation_share"] = statistics.median(shares[1:])
    if quick:  # `--quick` checks that the section runs: the busy-core numbers need the full data to mean anything
        return result
    quiet_fit = _median_time(trainer.epoch, repeats)
    quiet_predict = _median_time(lambda: model.predict(x), repeats)
    with _Spinner():
        busy_fit = _median_time(trainer.epoch, repeats)
        busy_predict = _median_time(lambda: model.predict(x), repeats)
    result.update(fit_quiet_s=quiet_fit, fit_busy_s=busy_fit, fit_kept=quiet_fit / busy_fit,
                  predict_quiet_s=quiet_predict, predict_busy_s=busy_predict,
                  predict_kept=quiet_predict / busy_predict)
    return result


def _torch(workload, data, repeats, quick):
    from .engines import TorchTrainer
    trainer = TorchTrainer(workload, data)
    torch, model, x = trainer.torch, trainer.model, trainer.x
    model.eval()

    def whole():
        with torch.no_grad():
            return model(x)

    def chunks():
        with torch.no_grad():
            return [model(x[s:s + 32]) for s in range(0, x.shape[0], 32)]

    one = x[:1]
    whole()
    result = {"predict_whole_s": _median_time(whole, repeats), "predict_chunks32_s": _median_time(chunks, repeats)}
    with torch.no_grad():
        result["one_row_us"] = _one_row_us(lambda: model(one), 200 if quick else ONE_ROW_CALLS)
    if workload.name == "w2b32" and not quick:
        epoch = trainer.epoch
        quiet_fit, quiet_predict = _median_time(epoch, repeats), _median_time(whole, repeats)
        with _Spinner():
            busy_fit, busy_predict = _median_time(epoch, repeats), _median_time(whole, repeats)
        result.update(fit_kept=quiet_fit / busy_fit, predict_kept=quiet_predict / busy_predict)
    return result


def _keras(workload, data, repeats, quick):
    from .engines import KerasTrainer
    trainer = KerasTrainer(workload, data)
    model, x = trainer.model, data["x"]
    model.predict(x[:64], verbose=0)
    one = x[:1]
    return {"predict_s": _median_time(lambda: model.predict(x, verbose=0), 1 if not quick else repeats),
            "one_row_us": _one_row_us(lambda: model.predict(one, verbose=0), 20 if quick else 100)}


RUNNERS = {"fastfit": _fastfit, "torch": _torch, "keras": _keras}


def run(engine, samples, repeats, quick=False, seed=0):
    """Worker side: the inference numbers of one engine for every workload of INFERENCE_WORKLOADS.

    Returns:
        dict: `engine`, `samples`, and per workload name the engine's numbers (fastfit also
        `ceiling_s`, the forward-only GEMM time of `samples` rows).
    """
    x, y, y_int = make_data(samples, seed)
    data = {"x": x, "y": y, "y_int": y_int}
    out = {"engine": engine, "samples": samples, "workloads": {}}
    for name in INFERENCE_WORKLOADS:
        workload = WORKLOADS[name]
        numbers = RUNNERS[engine](workload, data, repeats, quick)
        if engine == "fastfit":
            numbers["ceiling_s"] = forward_ceiling_seconds(workload, samples, 0.002 if quick else 0.05)
        out["workloads"][name] = numbers
    out["cores"] = os.cpu_count()
    out["classes"] = N_CLASSES
    return out


def fractions(results):
    """Per workload, fastfit's predict and evaluate as a fraction of the forward ceiling, and its speed
    relative to torch's whole-array no_grad call ({} when fastfit did not run)."""
    ff = results.get("fastfit", {}).get("workloads", {})
    torch = results.get("torch", {}).get("workloads", {})
    out = {}
    for name, numbers in ff.items():
        entry = {"predict_of_ceiling": numbers["ceiling_s"] / numbers["predict_s"],
                 "evaluate_of_ceiling": numbers["ceiling_s"] / numbers["evaluate_s"]}
        peer = torch.get(name, {})
        if "predict_whole_s" in peer:
            entry["predict_vs_torch"] = peer["predict_whole_s"] / numbers["predict_s"]
            entry["evaluate_vs_torch"] = peer["predict_whole_s"] / numbers["evaluate_s"]
            entry["one_row_vs_torch"] = peer["one_row_us"] / numbers["one_row_us"]
        out[name] = entry
    return out
