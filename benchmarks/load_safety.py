"""Loading files fastfit did not write: the cost of the safe (isolated) load, and a seeded byte-mutation run.

    python -m benchmarks.load_safety                  # costs + 500 mutants
    python -m benchmarks.load_safety --mutants 0      # costs only
    python -m benchmarks.load_safety --mutants 900 --seed 1

Costs: median of `--repeats` loads of the seed model (Dense(10, input_dim=784) + softmax, RMSprop) and of
W3 (784-1024-1024-10, Adam state, 21 MB) through the reader child, against the in-process read this process
takes for files it wrote itself (what every load did before the reader child existed).

Mutants: a small saved model with one byte of its HDF5 metadata changed (anywhere after the checksum
header but in the arrays' data) and the fastfit checksum recomputed, as an attacker would; each is loaded by
`load_model` in a worker process with a memory
cap and a time limit (`run_loads`). Outcomes: loaded, a clean ValueError/OSError, a raw exception (any other
type), a crash of the worker, or a hang (no answer within the limit). Only the first two are acceptable.
"""
import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER_MEMORY = 3 << 30   # address-space cap of the worker process (the reader child has its own, lower)
CHILD_TIMEOUT = 10        # FASTFIT_LOAD_TIMEOUT inside the worker (the reader child's limit)

_WORKER = r"""
import json, resource, sys, warnings
memory = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (memory, resource.getrlimit(resource.RLIMIT_AS)[1]))
warnings.simplefilter("ignore")
from fastfit.models import load_model
for line in sys.stdin:
    path = line.rstrip("\n")
    try:
        load_model(path)
        outcome = "loaded"
    except (ValueError, OSError) as error:
        outcome = "error"
    except BaseException as error:
        outcome = "raw:" + type(error).__name__ + ": " + str(error)[:200]
    sys.stdout.write(json.dumps(outcome) + "\n")
    sys.stdout.flush()
"""


def run_loads(paths, timeout=60.0, memory=WORKER_MEMORY):
    """`load_model` each path in a worker process; a list of outcomes ('loaded', 'error', 'raw:...',
    'crash:<code>', 'hang'). A crashed or hung worker is replaced for the next path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
               FASTFIT_LOAD_TIMEOUT=str(CHILD_TIMEOUT), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    outcomes, worker = [], None
    try:
        for path in paths:
            if worker is None:
                worker = subprocess.Popen([sys.executable, "-c", _WORKER, str(memory)], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
            worker.stdin.write(path + "\n")
            worker.stdin.flush()
            ready, _, _ = select.select([worker.stdout], [], [], timeout)
            line = worker.stdout.readline() if ready else None
            if line:
                outcomes.append(json.loads(line))
                continue
            if line is None:
                outcomes.append("hang")
                worker.kill()
            code = worker.wait()
            if line is not None:
                outcomes.append(f"crash:{code}")
            worker = None
    finally:
        if worker is not None:
            worker.stdin.close()
            worker.wait()
    return outcomes


def mutant(data, rng, offsets):
    """`data` (a fastfit file) with the byte at one of `offsets` changed and the checksum header recomputed."""
    from fastfit.saving import files
    body = bytearray(data[files.USERBLOCK:])
    offset = int(offsets[int(rng.integers(0, len(offsets)))]) - files.USERBLOCK
    body[offset] = (body[offset] + int(rng.integers(1, 256))) % 256
    return files._header(zlib.crc32(body), len(data)) + bytes(body)


def metadata_offsets(path):
    """The file offsets after the checksum header that are not array data nor free space: where libhdf5
    parses."""
    import h5py

    from fastfit.saving import files
    size = os.path.getsize(path)
    keep = np.ones(size, dtype=bool)
    keep[:files.USERBLOCK] = False

    def drop(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.id.get_offset() is not None:
            start = files.USERBLOCK + obj.id.get_offset()
            keep[start:start + obj.id.get_storage_size()] = False
    with h5py.File(path, "r") as f:
        f.visititems(drop)
    # Not the long zero runs of free space either: bytes at most 8 away from a nonzero byte.
    with open(path, "rb") as handle:
        nonzero = np.frombuffer(handle.read(), dtype=np.uint8) != 0
    near = np.convolve(nonzero, np.ones(17), mode="same") > 0
    return np.flatnonzero(keep & near)


def small_model_file(path):
    """A small trained model with Adam state (mostly metadata: where libhdf5 parses)."""
    import fastfit
    from fastfit.layers import Dense, Dropout
    from fastfit.models import Sequential
    fastfit.utils.set_random_seed(3)
    model = Sequential([Dense(8, input_dim=6, activation="relu"), Dropout(0.25), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["acc"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = fastfit.utils.to_categorical(rng.integers(0, 3, size=32), 3)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(path)
    return model


def mutation_run(count, seed=0, folder=None, timeout=60.0):
    """Outcome counts of `count` seeded one-byte mutants of `small_model_file` (see the module docstring)."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        original = os.path.join(tmp, "model.h5")
        small_model_file(original)
        with open(original, "rb") as handle:
            data = handle.read()
        rng = np.random.default_rng(seed)
        offsets = metadata_offsets(original)
        paths = []
        for index in range(count):
            path = os.path.join(tmp, f"mutant_{index}.h5")
            with open(path, "wb") as handle:
                handle.write(mutant(data, rng, offsets))
            paths.append(path)
        outcomes = run_loads(paths, timeout=timeout)
    counts = {"mutants": count, "loaded": 0, "error": 0, "raw": 0, "crash": 0, "hang": 0}
    details = []
    for index, outcome in enumerate(outcomes):
        kind = outcome.split(":")[0]
        counts[kind] += 1
        if kind not in ("loaded", "error"):
            details.append((index, outcome))
    counts["problems"] = details
    return counts


def _model(widths, optimizer):
    import fastfit
    from fastfit.layers import Dense
    from fastfit.models import Sequential
    fastfit.utils.set_random_seed(0)
    layers = [Dense(widths[1], input_dim=widths[0], activation="relu" if len(widths) > 2 else "softmax")]
    for i, width in enumerate(widths[2:]):
        layers.append(Dense(width, activation="relu" if i < len(widths) - 3 else "softmax"))
    model = Sequential(layers)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(256, widths[0])).astype("float32")
    y = fastfit.utils.to_categorical(np.arange(256) % widths[-1], widths[-1])
    model.fit(x, y, epochs=1, batch_size=256, verbose=0)
    return model


def load_costs(repeats=7, folder=None):
    """Median seconds of a safe (reader child) load and of an in-process load, for the seed model and W3."""
    from fastfit.models import load_model
    from fastfit.saving import isolation
    results = {}
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        for name, widths, optimizer in (("seed", [784, 10], "rmsprop"), ("w3", [784, 1024, 1024, 10], "adam")):
            path = os.path.join(tmp, f"{name}.h5")
            _model(widths, optimizer).save(path)
            timings = {}
            for mode in ("in_process", "isolated"):
                times = []
                for _ in range(repeats):
                    if mode == "isolated":
                        isolation._written.clear()  # as if another process wrote the file
                    else:
                        isolation.remember_written(path)
                    start = time.perf_counter()
                    load_model(path)
                    times.append(time.perf_counter() - start)
                timings[mode] = statistics.median(times)
            results[name] = dict(timings, megabytes=os.path.getsize(path) / 1e6)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load_safety", description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    costs = load_costs(args.repeats)
    for name, row in costs.items():
        print(f"{name:5s} ({row['megabytes']:.1f} MB): in-process {row['in_process'] * 1e3:7.1f} ms   "
              f"isolated {row['isolated'] * 1e3:7.1f} ms   (+{(row['isolated'] - row['in_process']) * 1e3:.0f} ms)")
    if args.mutants:
        start = time.perf_counter()
        counts = mutation_run(args.mutants, args.seed)
        print(f"{args.mutants} one-byte mutants (seed {args.seed}, {time.perf_counter() - start:.0f} s): "
              + ", ".join(f"{k} {v}" for k, v in counts.items() if k not in ("mutants", "problems")))
        for index, outcome in counts["problems"]:
            print(f"  mutant {index}: {outcome}")
        return 1 if counts["problems"] else 0
    return 0


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    sys.exit(main())
