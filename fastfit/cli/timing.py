"""Time whole `fit` epochs of one model on each engine, for `demo` and the built-in `bench`."""
import statistics
import time

from fastfit.callbacks import Callback
from fastfit.core import CORES, compiled_core


class EpochTimer(Callback):
    """Records the wall time of every epoch (epoch hooks only, so it adds no per-batch cost)."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def compare_engines(build_model, x, y, epochs, batch_size, seed=0):
    """Median epoch time of the same run on the Cython and the NumPy reference engine.

    Both models start from the same seeded weights. Each engine runs one untimed epoch (imports, workspace
    allocation, BLAS thread start-up) and then its timed epochs, one engine after the other. The engines are
    not interleaved epoch by epoch: NumPy and SciPy each bring their own BLAS thread pool, and the threads of
    one keep spinning for a while after a call, which would slow the other engine's next epoch. Each time is
    a whole `fit` epoch as the user sees it, Python bookkeeping included.

    Arguments:
        build_model: callable `engine -> compiled model`.
        x, y: training data.
        epochs: number of timed epochs per engine (>= 1).
        batch_size: batch size of `fit`.
        seed: seed of the initial weights and the shuffling.

    Returns:
        `{'cython': seconds, 'python': seconds, 'ratio': python / cython}`, or None when the compiled
        engine is not built.
    """
    from fastfit.utils import set_random_seed

    if compiled_core() is None:
        return None
    result = {}
    for engine in CORES:
        set_random_seed(seed)
        timer = EpochTimer()
        build_model(engine).fit(x, y, batch_size=batch_size, epochs=epochs + 1, verbose=0, callbacks=[timer])
        result[engine] = statistics.median(timer.seconds[1:])
    result["ratio"] = result["python"] / result["cython"]
    return result


def describe_ratio(ratio):
    """`'4.2x faster'`, or for a ratio below 1 (a busy machine, tiny work) `'0.8x as fast (slower)'`."""
    return f"{ratio:.1f}x faster" if ratio >= 1 else f"{ratio:.1f}x as fast (slower)"


def format_seconds(seconds):
    """`12.3 ms` below a second, `1.23 s` above."""
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
