"""Peak memory of a W1 fit, and whether fit copies the whole data set (issue 6, item 5).

Runs in a fresh interpreter. After the imports and the model are ready, the data is made directly in
float32 (no temporaries), then `fit` runs. The budget is

    RSS before the data  +  input arrays * 1.10  +  model and optimizer state

and the peak RSS of the process (the kernel's high-water mark VmHWM, reset just before the data is made,
so import-time peaks do not count) must stay under it. A second epoch runs
under `tracemalloc` (NumPy reports its buffers to it): if the largest traced allocation peak during fit is
about the size of `x`, fit copies the data set.
"""
import resource
import tracemalloc

from .engines import FastfitTrainer
from .workloads import WORKLOADS, make_data

SLOTS = {"rmsprop": 1, "adam": 2}


def current_rss():
    """Returns this process's resident set size in bytes (from /proc/self/statm)."""
    import os
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak():
    """Resets the kernel's peak-RSS mark (Linux >= 4.0); returns False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss():
    """Returns the peak resident set size in bytes since `reset_peak` (else since the process started)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # Linux reports KiB


def run(samples, epochs=2, workload="w1", engine="cython", seed=0):
    """Worker side: measure the memory of a fit.

    Arguments:
        samples: rows of synthetic data.
        epochs: epochs in the measured fit.
        workload: workload name (W1 by default).
        engine: fastfit engine ('cython' or 'python').
        seed: data seed.

    Returns:
        dict of byte counts (`rss_base`, `input_bytes`, `state_bytes`, `budget`, `peak_rss`,
        `fit_growth`, `traced_peak_in_fit`) and the verdicts `within_budget` and `copies_dataset`.
    """
    w = WORKLOADS[workload]
    import numpy as np

    probe = {"x": np.zeros((1, 784), np.float32), "y": np.zeros((1, 10), np.float32),
             "y_int": np.zeros(1, np.int64)}
    trainer = FastfitTrainer(w, probe, engine=engine)
    trainer.epoch()                                    # every import and lazy init done
    make_data(256, seed)   # NumPy's own BLAS allocates its thread buffers (~64 MiB) on first use: not fit's
    rss_base = current_rss()
    peak_was_reset = reset_peak()      # import-time peaks must not count against the fit
    x, y, y_int = make_data(samples, seed)
    del y_int
    trainer.x, trainer.y = x, y
    input_bytes = x.nbytes + y.nbytes
    state_bytes = w.n_params() * x.itemsize * (1 + SLOTS[w.optimizer])
    rss_before_fit = current_rss()
    peak_before_fit = peak_rss()
    trainer.epoch(epochs=epochs)
    peak = peak_rss()
    tracemalloc.start()
    trainer.epoch()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    budget = rss_base + 1.10 * input_bytes + state_bytes
    return {
        "workload": workload,
        "engine": engine,
        "samples": samples,
        "rss_base": rss_base,
        "peak_was_reset": peak_was_reset,
        "input_bytes": input_bytes,
        "state_bytes": state_bytes,
        "budget": budget,
        "rss_before_fit": rss_before_fit,
        "peak_before_fit": peak_before_fit,
        "peak_rss": peak,
        "fit_growth": peak - rss_before_fit,
        "traced_peak_in_fit": traced_peak,
        "within_budget": peak <= budget,
        "copies_dataset": traced_peak >= 0.5 * x.nbytes,
    }
