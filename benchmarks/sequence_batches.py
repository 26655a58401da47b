"""`fit(Sequence)` with small batches against the same fit from in-memory arrays (W2 shapes, 784-128-10 Adam,
batch 32, 6000 rows, one epoch per run): the cost a `Sequence` or a generator adds per batch.

    python -m benchmarks.sequence_batches [--rounds 7] [--samples 6000]

The cases run in turn, round after round (ABAB), so a busy machine weighs on all of them alike; the report
gives each case's median, its ratio to the array fit and the added time per batch. "per-call fallback" is
the Sequence fit with the engine's one-thread fallback starting over at every engine call (as before the
streamed loops kept it until the end of the pass).
"""
import argparse
import statistics
import time

import fastfit
from fastfit.engine import part_loops
from fastfit.layers import Dense
from fastfit.models import Sequential

from .workloads import make_data

BATCH = 32


class Batches(fastfit.utils.Sequence):
    """The in-memory fit's batches (shuffle=False)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return -(-len(self.x) // BATCH)

    def __getitem__(self, index):
        rows = slice(index * BATCH, (index + 1) * BATCH)
        return self.x[rows], self.y[rows]


def generator(x, y):
    sequence = Batches(x, y)
    for index in range(len(sequence)):
        yield sequence[index]


def w2_model(x, y):
    fastfit.utils.set_random_seed(1)
    model = Sequential([Dense(128, activation="relu", input_shape=(x.shape[1],)), Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", metrics=["acc"], engine="cython")
    model.fit(x[:2 * BATCH], y[:2 * BATCH], batch_size=BATCH, verbose=0)  # warm-up
    return model


def per_call_fallback(run):
    keep = part_loops.OneThreadAfterFallback.after_part
    part_loops.OneThreadAfterFallback.after_part = lambda self: None
    try:
        run()
    finally:
        part_loops.OneThreadAfterFallback.after_part = keep


def cases(x, y):
    steps = len(Batches(x, y))
    return {
        "arrays": lambda m: m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False),
        "Sequence, workers=1": lambda m: m.fit(Batches(x, y), epochs=1, verbose=0, shuffle=False),
        "Sequence, workers=0": lambda m: m.fit(Batches(x, y), epochs=1, verbose=0, shuffle=False, workers=0),
        "generator": lambda m: m.fit(generator(x, y), steps_per_epoch=steps, epochs=1, verbose=0),
        "Sequence, max_queue_size=1": lambda m: m.fit(Batches(x, y), epochs=1, verbose=0, shuffle=False,
                                                      max_queue_size=1),
        "Sequence, per-call fallback": lambda m: per_call_fallback(
            lambda: m.fit(Batches(x, y), epochs=1, verbose=0, shuffle=False)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--samples", type=int, default=6000)
    args = parser.parse_args(argv)
    x, y, _ = make_data(args.samples)
    runs = cases(x, y)
    models = {name: w2_model(x, y) for name in runs}
    times = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run(models[name])
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["arrays"])
    batches = len(Batches(x, y))
    print(f"W2 784-128-10 Adam, batch {BATCH}, {args.samples} rows ({batches} batches), median of {args.rounds}")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"{name:30s} {median * 1e3:8.1f} ms  (min {min(seconds) * 1e3:8.1f})  x{median / base:5.2f}  "
              f"{(median - base) / batches * 1e6:+8.0f} us/batch")


if __name__ == "__main__":
    main()
