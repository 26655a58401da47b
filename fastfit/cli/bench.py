"""`fastfit bench`: the repository's quick benchmark, or a small built-in timing of the two engines."""
import os
import subprocess
import sys

import numpy as np

from fastfit.cli.timing import compare_engines, describe_ratio, format_seconds


def add_arguments(parser):
    parser.add_argument("--builtin", action="store_true",
                        help="run the small built-in timing even when the repository's benchmarks/ exists")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per engine, built-in timing "
                        "(default: %(default)s)")
    parser.add_argument("--samples", type=int, default=8192, help="rows of synthetic data, built-in timing "
                        "(default: %(default)s)")


def repo_benchmarks():
    """The folder holding the repository's `benchmarks/` package, or None for an installed fastfit."""
    import fastfit

    root = os.path.dirname(os.path.dirname(os.path.abspath(fastfit.__file__)))
    return root if os.path.isfile(os.path.join(root, "benchmarks", "__main__.py")) else None


# (label, layer sizes, optimizer, batch size): the two smaller workloads of the repository's benchmarks
# (benchmarks/workloads.py; W1 and W2 in docs/performance.md), small enough for a minute
WORKLOADS = [
    ("W1 784-10 softmax, RMSprop, batch 128", [784, 10], "rmsprop", 128),
    ("W2 784-128-10, Adam, batch 32", [784, 128, 10], "adam", 32),
    ("W2 784-128-10, Adam, batch 128", [784, 128, 10], "adam", 128),
]


def _builder(sizes, optimizer):
    def build(engine):
        from fastfit.layers import Dense
        from fastfit.models import Sequential

        model = Sequential()
        for index, units in enumerate(sizes[1:]):
            last = index == len(sizes) - 2
            kwargs = {"input_dim": sizes[0]} if index == 0 else {}
            model.add(Dense(units, activation="softmax" if last else "relu", **kwargs))
        model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["acc"], engine=engine)
        return model
    return build


def builtin(args, say=print):
    """Median epoch time and samples/s of each workload on both engines; returns the result rows."""
    from fastfit.utils import to_categorical

    if args.epochs < 1 or args.samples < 1:
        raise SystemExit(f"fastfit bench: --epochs and --samples must be >= 1, got {args.epochs} and "
                         f"{args.samples}")
    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 784), dtype=np.float32)
    y = to_categorical(rng.integers(0, 10, args.samples), 10)
    say(f"Built-in timing: {args.samples} synthetic rows, median of {args.epochs} epochs per engine")
    rows = []
    for label, sizes, optimizer, batch_size in WORKLOADS:
        result = compare_engines(_builder(sizes, optimizer), x, y, args.epochs, batch_size)
        if result is None:
            say("The compiled extensions are not built: nothing to compare (see `fastfit info`).")
            return rows
        say(f"  {label:<38} cython {args.samples / result['cython']:>10,.0f} samples/s "
            f"({format_seconds(result['cython'])}/epoch)   NumPy reference "
            f"{args.samples / result['python']:>9,.0f} samples/s   cython {describe_ratio(result['ratio'])}")
        rows.append((label, result))
    return rows


def run(args, say=print):
    root = None if args.builtin else repo_benchmarks()
    if root is None:
        return builtin(args, say)
    say(f"Running the repository benchmark: python -m benchmarks --quick (in {root})")
    return subprocess.call([sys.executable, "-m", "benchmarks", "--quick"], cwd=root)
