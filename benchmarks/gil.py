"""Does fastfit release the GIL while it trains? (issue 6, item 4)

Runs in a fresh interpreter with BLAS limited to one thread (environment variables set before NumPy is
imported, and threadpoolctl when installed), so one training thread uses one core and the other core is
free for the second thread:

1. a pure-Python counting thread alone, then while fastfit trains W2 in the main thread: both must keep
   >= 85% of their solo rates;
2. two fits of two models in two threads versus the same two fits one after the other: >= 1.7x faster.
Each measurement is repeated and the median kept.
"""
import statistics
import threading
import time

from .engines import FastfitTrainer
from .workloads import WORKLOADS, make_data

ONE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                  "BLIS_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1"}


class Counter(threading.Thread):
    """Counts in pure Python until stopped; `rate` is counts per second."""

    def __init__(self):
        super().__init__(daemon=True)
        self.running = True
        self.count = 0
        self.seconds = 0.0

    def run(self):
        n = 0
        t0 = time.perf_counter()
        while self.running:
            n += 1
        self.seconds = time.perf_counter() - t0
        self.count = n

    def stop(self):
        self.running = False
        self.join()

    @property
    def rate(self):
        return self.count / self.seconds


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _limit_blas():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "environment variables only (threadpoolctl not installed)"
    threadpool_limits(1)
    return "environment variables + threadpoolctl"


def run(samples, repeats, workload="w2b128", engine="cython", seed=0):
    """Worker side (start the worker with `ONE_THREAD_ENV`): measure GIL behaviour of `engine`.

    Arguments:
        samples: rows of synthetic data.
        repeats: rounds; medians are reported.
        workload: workload name (W2 by default).
        engine: fastfit engine ('cython' or 'python').
        seed: data seed.

    Returns:
        dict with solo and concurrent rates, `counter_kept`, `train_kept` (fractions), `two_thread_speedup`
        and the raw times.
    """
    blas_limit = _limit_blas()
    w = WORKLOADS[workload]
    x, y, y_int = make_data(samples, seed)
    data = {"x": x, "y": y, "y_int": y_int}
    a = FastfitTrainer(w, data, engine=engine)
    b = FastfitTrainer(w, data, engine=engine)
    a.epoch()
    b.epoch()
    rows = {k: [] for k in ("train_solo_s", "counter_solo", "train_with_counter_s", "counter_with_train",
                            "sequential_s", "threads_s")}
    for _ in range(repeats):
        solo = _timed(a.epoch)
        rows["train_solo_s"].append(solo)

        counter = Counter()
        counter.start()
        time.sleep(min(solo, 2.0))
        counter.stop()
        rows["counter_solo"].append(counter.rate)

        counter = Counter()
        counter.start()
        rows["train_with_counter_s"].append(_timed(a.epoch))
        counter.stop()
        rows["counter_with_train"].append(counter.rate)

        rows["sequential_s"].append(_timed(a.epoch) + _timed(b.epoch))
        threads = [threading.Thread(target=t.epoch) for t in (a, b)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows["threads_s"].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in rows.items()}
    return {
        "workload": workload,
        "engine": engine,
        "samples": samples,
        "blas_limit": blas_limit,
        "train_solo_samples_per_s": samples / med["train_solo_s"],
        "train_with_counter_samples_per_s": samples / med["train_with_counter_s"],
        "counter_solo_per_s": med["counter_solo"],
        "counter_with_train_per_s": med["counter_with_train"],
        "counter_kept": med["counter_with_train"] / med["counter_solo"],
        "train_kept": med["train_solo_s"] / med["train_with_counter_s"],
        "sequential_s": med["sequential_s"],
        "threads_s": med["threads_s"],
        "two_thread_speedup": med["sequential_s"] / med["threads_s"],
        "raw": rows,
    }
