"""Training from disk (issue 21): memory bound, warm/cold-cache speed against in-memory arrays, a `Sequence`
with workers, and the torch DataLoader / Keras 3 PyDataset anchors.

Runs in a fresh interpreter (`call_once("streaming:run", ...)`). Three measurements:

- **bound**: a W1 fit from an `np.memmap` of `bound_samples` rows (the issue asks for >= 4 GB on disk)
  with `buffer_size` (float32 rows: read in place, buffers hold only row order), then from the same rows in
  an HDF5 file (read into the two buffers; its bound adds HDF5's own chunk cache, `rdcc_nbytes` of the file,
  which the library fills whatever the data's size); a sampling thread reads `RssAnon` from
  /proc/self/status every 20 ms. The bound is
  `2 x buffer_size + the growth of the same fit on a memmap of 4 batches` (model, optimizer slots and engine
  workspaces, measured), above the RssAnon before the fit.
- **speed**: W1 and W3 epochs on `speed_samples` rows from in-memory arrays, from an `np.memmap` and from a
  chunked, uncompressed `h5py.Dataset`, with `buffer_size` = a quarter of the data (so the stream really runs
  in buffers); warm page cache (the sources take turns epoch by epoch, for at least `repeats` rounds and
  about `MEASURED_S` seconds each), and cold (pages evicted with `posix_fadvise(DONTNEED)` before each epoch)
  beside the disk's own sequential read rate. Also from the same rows in a contiguous HDF5 dataset (h5py's
  default layout, mapped and read in place as the memmap is; warm only). For each stream, the CPU seconds
  its reader spends on an epoch with no training (`*_reader_cpu_s`) and the ceiling they leave:
  `min(1, cores x in-memory epoch / (training CPU + reader CPU))`, the training CPU being the least an epoch
  takes (the engine's two-thread plan run on one thread, as for the CPU-bound Sequence below): the in-memory
  fit already keeps every core busy, so whatever the reader spends comes out of training.
- **sequence**: two `Sequence`s serving the in-memory batches, `workers=2` threads and processes, against
  the in-memory rate (`measure_sequence`): one whose `__getitem__` *waits* one training step (the target
  case: reading from slow storage), one whose `__getitem__` costs one step of *CPU*, beside the ceiling the
  machine's cores allow for it.
"""
import itertools
import math
import os
import resource
import threading
import time

import numpy as np

from .engines import FastfitTrainer
from .workloads import N_CLASSES, N_FEATURES, WORKLOADS, make_data

MIB = 1 << 20
MEASURED_S = 2.0  # warm epochs are repeated until each source has trained about this long (short epochs vary)


def rss_anon():
    """RssAnon of this process in bytes (anonymous memory: not the page cache of mapped files)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakSampler:
    """Samples RssAnon every `period` seconds on a thread while the `with` block runs."""

    def __init__(self, period=0.02):
        self.period, self.peak, self._stop = period, 0, threading.Event()

    def __enter__(self):
        self.peak = rss_anon()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.period):
            self.peak = max(self.peak, rss_anon())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_anon())


def write_files(directory, samples, seed=0, block=16384, contiguous=False):
    """x/y as raw memmap files and as one HDF5 file (x chunked by ~1 MiB, uncompressed; with `contiguous`, x
    also as `x_contiguous` in h5py's default layout), written in blocks (never the whole data set in memory).
    Returns the paths."""
    import h5py
    paths = {"x": os.path.join(directory, "x.f32"), "y": os.path.join(directory, "y.f32"),
             "h5": os.path.join(directory, "data.h5")}
    x_map = np.memmap(paths["x"], np.float32, "w+", shape=(samples, N_FEATURES))
    y_map = np.memmap(paths["y"], np.float32, "w+", shape=(samples, N_CLASSES))
    with h5py.File(paths["h5"], "w") as handle:
        chunk_rows = max(1, MIB // (4 * N_FEATURES))
        hx = handle.create_dataset("x", (samples, N_FEATURES), np.float32,
                                   chunks=(min(chunk_rows, samples), N_FEATURES))
        hy = handle.create_dataset("y", (samples, N_CLASSES), np.float32)
        hc = handle.create_dataset("x_contiguous", (samples, N_FEATURES), np.float32) if contiguous else None
        for number, start in enumerate(range(0, samples, block)):
            x, y, _ = make_data(min(block, samples - start), seed + number)
            x_map[start:start + len(x)] = x
            y_map[start:start + len(x)] = y
            hx[start:start + len(x)] = x
            hy[start:start + len(x)] = y
            if hc is not None:
                hc[start:start + len(x)] = x
    x_map.flush()
    y_map.flush()
    del x_map, y_map
    return paths


def evict(path):
    """Drop `path`'s pages from the page cache (they are clean: written and flushed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def sequential_read_rate(path):
    """Bytes per second of one cold sequential read of `path` in 8 MiB blocks."""
    evict(path)
    total, start = 0, time.perf_counter()
    with open(path, "rb", buffering=0) as fh:
        while True:
            block = fh.read(8 * MIB)
            if not block:
                break
            total += len(block)
    return total / (time.perf_counter() - start)


def _maps(paths, samples):
    import h5py
    handle = h5py.File(paths["h5"], "r")
    return {"memmap": (np.memmap(paths["x"], np.float32, "r", shape=(samples, N_FEATURES)),
                       np.memmap(paths["y"], np.float32, "r", shape=(samples, N_CLASSES))),
            "h5py": (handle["x"], handle["y"]),
            **({"h5py_contiguous": (handle["x_contiguous"], handle["y"])} if "x_contiguous" in handle else {})}, handle


def _cpu_seconds():
    """CPU seconds this process has used (all its threads, user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cores_ceiling(cores, in_memory_s, cpu_s):
    """The most of the in-memory rate a fit can keep when each unit of work (an epoch, a step) that takes
    `in_memory_s` in memory needs `cpu_s` CPU seconds at least with its reading added: `cores` cores give
    at most `cores / cpu_s` units per second, and never more than the in-memory rate."""
    return min(1.0, cores * in_memory_s / cpu_s)


def _one_epoch(trainer, x, y, buffer_size=None):
    """(wall seconds, CPU seconds) of a one-epoch fit."""
    kwargs = {} if buffer_size is None else {"buffer_size": buffer_size}
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    trainer.model.fit(x, y, batch_size=trainer.batch_size, epochs=1, verbose=0, **kwargs)
    return time.perf_counter() - start, _cpu_seconds() - cpu_start


def _epoch_seconds(trainer, x, y, repeats, buffer_size=None, before=None):
    """Median wall seconds of `repeats` one-epoch fits after a warm-up (`before` runs before each)."""
    _one_epoch(trainer, x, y, buffer_size)  # warm-up
    times = []
    for _ in range(repeats):
        if before:
            before()
        times.append(_one_epoch(trainer, x, y, buffer_size)[0])
    return float(np.median(times))


def _interleaved_epochs(trainer, sources, repeats):
    """{name: (median wall s, median CPU s)} of one-epoch fits from `sources` ({name: (x, y, buffer_size)}),
    taking turns round after round (a busy machine weighs on all alike); at least `repeats` rounds and
    enough for about `MEASURED_S` seconds of the first source."""
    for x, y, buffer_size in sources.values():
        _one_epoch(trainer, x, y, buffer_size)  # warm-up
    first = next(iter(sources.values()))
    rounds = max(repeats, math.ceil(MEASURED_S / max(_one_epoch(trainer, *first)[0], 1e-6)))
    found = {name: [] for name in sources}
    for _ in range(rounds):
        for name, (x, y, buffer_size) in sources.items():
            found[name].append(_one_epoch(trainer, x, y, buffer_size))
    return {name: (float(np.median([w for w, _ in times])), float(np.median([c for _, c in times])))
            for name, times in found.items()}


def _reader_cpu_seconds(model, x, y, batch_size, buffer_size, repeats):
    """CPU seconds the reader spends on one epoch's buffers with no training (fit's own reading and checks,
    through `fastfit.engine.streams`), median of `repeats`."""
    from fastfit.engine import streams
    times = []
    for epoch in range(repeats + 1):  # the first pass warms up
        feed = streams.StreamFeed(model, streams.RowSource(x, "x"), streams.RowSource(y, "y"), None, batch_size,
                                  buffer_size, True)
        start = _cpu_seconds()
        for _ in feed.train_parts(epoch, 0):
            pass
        times.append(_cpu_seconds() - start)
        feed.close()
    return float(np.median(times[1:]))


def measure_bound(directory, samples, buffer_size, engine):
    paths = write_files(directory, samples)
    maps, handle = _maps(paths, samples)
    x, y = maps["memmap"]
    trainer = FastfitTrainer(WORKLOADS["w1"], {"x": x, "y": y}, engine=engine)
    small = 4 * trainer.batch_size
    trainer.model.fit(x[:small], y[:small], batch_size=trainer.batch_size, epochs=1, verbose=0)  # imports
    base = rss_anon()
    with PeakSampler() as small_fit:
        trainer.model.fit(x[:small], y[:small], batch_size=trainer.batch_size, epochs=1, verbose=0)
    workspaces = max(0, small_fit.peak - base)
    bound = 2 * buffer_size + workspaces
    found = {}
    chunk_cache = handle.id.get_access_plist().get_cache()[2]  # HDF5's own per-dataset cache, rdcc_nbytes
    for kind in ("memmap", "h5py"):  # float32 memmap: read in place; HDF5: read into the two buffers
        x, y = maps[kind]
        kind_bound = bound + (chunk_cache if kind == "h5py" else 0)
        base = rss_anon()
        start = time.perf_counter()
        with PeakSampler() as fit:
            trainer.model.fit(x, y, batch_size=trainer.batch_size, epochs=1, verbose=0, buffer_size=buffer_size)
        seconds = time.perf_counter() - start
        growth = fit.peak - base
        found[kind] = {"rss_anon_base": base, "rss_anon_peak": fit.peak, "growth": growth,
                       "within_bound": growth <= kind_bound, "epoch_s": seconds}
    found["h5py"].update(bound=bound + chunk_cache, chunk_cache=chunk_cache)
    handle.close()
    return {"samples": samples, "file_bytes": os.path.getsize(paths["x"]), "buffer_size": buffer_size,
            "workspaces": workspaces, "bound": bound, **found["memmap"], "h5py": found["h5py"]}


def measure_speed(directory, samples, repeats, engine, cold, workloads=("w1", "w3")):
    paths = write_files(directory, samples, seed=1000, contiguous=True)
    maps, handle = _maps(paths, samples)
    x_mem, y_mem, _ = make_data(samples, 0)
    buffer_size = max(MIB, (x_mem.nbytes + 8 * samples) // 4)
    cores = len(os.sched_getaffinity(0))
    result = {"samples": samples, "buffer_size": buffer_size, "cores": cores, "workloads": {}}
    for name in workloads:
        trainer = FastfitTrainer(WORKLOADS[name], {"x": x_mem, "y": y_mem}, engine=engine)
        epochs = _interleaved_epochs(trainer, {"in_memory": (x_mem, y_mem, None),
                                               **{kind: (x, y, buffer_size) for kind, (x, y) in maps.items()}},
                                     repeats)
        wall, cpu = epochs["in_memory"]
        least = _one_thread_cpu_seconds(trainer, x_mem, y_mem, repeats)  # None on the NumPy engine
        training_cpu = cpu if least is None else least
        row = {"in_memory_s": wall, "in_memory_cpu_s": cpu, "training_cpu_s": training_cpu}
        for kind, (x, y) in maps.items():
            row[f"{kind}_warm_s"], row[f"{kind}_warm_cpu_s"] = epochs[kind]
            row[f"{kind}_warm_ratio"] = row["in_memory_s"] / row[f"{kind}_warm_s"]
            reader = _reader_cpu_seconds(trainer.model, x, y, trainer.batch_size, buffer_size, repeats)
            row[f"{kind}_reader_cpu_s"] = reader
            row[f"{kind}_ceiling_ratio"] = cores_ceiling(cores, wall, training_cpu + reader)
            if cold and kind != "h5py_contiguous":  # read from disk the same way as the memmap
                files = [paths["x"], paths["y"]] if kind == "memmap" else [paths["h5"]]
                row[f"{kind}_cold_s"] = _epoch_seconds(trainer, x, y, repeats, buffer_size,
                                                       before=lambda files=files: [evict(f) for f in files])
                row[f"{kind}_cold_ratio"] = row["in_memory_s"] / row[f"{kind}_cold_s"]
        result["workloads"][name] = row
    handle.close()
    if cold:
        result["disk_read_bytes_per_s"] = sequential_read_rate(paths["x"])
        result["data_bytes"] = os.path.getsize(paths["x"])
    return result


def measure_sequence(samples, repeats, engine, workload="w3", with_anchors=True):
    """Two Sequences serving the batches of the in-memory fit (W3 by default), each with `workers=2` threads
    and then processes, against the in-memory epoch; the cases take turns, round after round, so the load of
    a shared machine weighs on all of them alike.

    - **waits**: `__getitem__` sleeps one in-memory step (`time.sleep`): it stands for reading from slow
      storage (a disk, network storage, a remote store), a wait that needs no core. The workers can hide
      it completely: the issue's >= 80 % target applies here.
    - **CPU**: `__getitem__` runs NumPy work (`np.exp`, which releases the GIL) that costs one in-memory
      step on one core (`getitem_cpu_s`, its thread CPU time). Reading then competes with training for the
      cores, and `cpu_ceiling_ratio` bounds what any overlap can reach: a batch needs `C` core-seconds of
      training (`one_thread_step_s`: the process CPU time per step of the in-memory epoch run on one
      thread, the engine's two-thread plan done serially, the least CPU a step takes) plus `W` of
      `__getitem__`, so `cores` cores serve at most `cores / (C + W)` batches per second, and the ratio to
      the in-memory rate `1 / step_s` is at most `min(1, cores * step_s / (C + W))`: about 2/3 on 2 cores
      when the engine scales perfectly (C = 2 x step_s, W = step_s). None for engines without a one-thread
      plan (the NumPy engine). The compiled engine's two threads work in lock step, so when a worker holds a
      core the engine falls back to one thread for the rest of the pass; `one_thread_ratio`
      (`step_s / one_thread_step_s`) is the rate of the engine alone on one thread, which that reaches.

    Keys: `threads_*`/`processes_*` are the CPU case (as before the waits case was added), `waits_*` the
    waits case.
    """
    import fastfit
    x, y, _ = make_data(samples, 0)
    trainer = FastfitTrainer(WORKLOADS[workload], {"x": x, "y": y}, engine=engine)
    bs = trainer.batch_size
    batches = int(-(-samples // bs))
    in_memory = _epoch_seconds(trainer, x, y, repeats)
    step = in_memory / batches
    one_thread = _one_thread_cpu_seconds(trainer, x, y, repeats)
    scratch = np.random.default_rng(0).random(1 << 16)
    out = np.empty_like(scratch)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < 0.2:
        np.exp(scratch, out=out)
        calls += 1
    work = max(1, int(step / (0.2 / calls)))

    class Waits(fastfit.utils.Sequence):
        def __len__(self):
            return batches

        def __getitem__(self, index):
            time.sleep(step)
            rows = slice(index * bs, (index + 1) * bs)
            return x[rows], y[rows]

    class Costly(Waits):
        def __getitem__(self, index):
            buf = np.empty_like(scratch)
            for _ in range(work):
                np.exp(scratch, out=buf)
            rows = slice(index * bs, (index + 1) * bs)
            return x[rows], y[rows]

    cpu = []
    for index in range(3):
        t0 = time.thread_time()
        Costly()[index]
        cpu.append(time.thread_time() - t0)
    getitem_cpu = float(np.median(cpu))
    cores = len(os.sched_getaffinity(0))
    cases = {"waits_threads": (Waits, False), "waits_processes": (Waits, True),
             "threads": (Costly, False), "processes": (Costly, True)}
    seconds = {label: [] for label in cases}
    for _ in range(repeats):
        for label, (kind, processes) in cases.items():
            t0 = time.perf_counter()
            trainer.model.fit(kind(), epochs=1, verbose=0, workers=2, use_multiprocessing=processes)
            seconds[label].append(time.perf_counter() - t0)
    result = {"workload": workload, "samples": samples, "in_memory_s": in_memory, "step_s": step,
              "cores": cores, "getitem_cpu_s": getitem_cpu,
              "one_thread_step_s": None if one_thread is None else one_thread / batches, "cpu_ceiling_ratio": None}
    if one_thread is not None:
        result["cpu_ceiling_ratio"] = cores_ceiling(cores, step, one_thread / batches + getitem_cpu)
        result["one_thread_ratio"] = step * batches / one_thread
    for label in cases:
        result[f"{label}_s"] = float(np.median(seconds[label]))
        result[f"{label}_ratio"] = in_memory / result[f"{label}_s"]
    if with_anchors:
        result["anchors"] = anchors(x, y, bs, repeats)
    return result


def _one_thread_cpu_seconds(trainer, x, y, repeats):
    """Median process CPU seconds of an in-memory epoch with the compiled engine's two-thread plan run on one
    thread (its `serial` flag: the same row blocks one after the other); None for a network without it."""
    network = trainer.model._train_network()
    if getattr(network, "serial", None) is None:
        return None
    before = network.serial
    network.serial = True
    try:
        trainer.model.fit(x, y, batch_size=trainer.batch_size, epochs=1, verbose=0)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.process_time()
            trainer.model.fit(x, y, batch_size=trainer.batch_size, epochs=1, verbose=0)
            times.append(time.process_time() - t0)
    finally:
        network.serial = before
    return float(np.median(times))


def anchors(x, y, batch_size, repeats):
    """W3 epochs of torch with a DataLoader over a memmap-like array and Keras 3 with a PyDataset, when
    installed (seconds per epoch, or a note)."""
    found = {}
    try:
        import torch
        from torch import nn
        from torch.utils.data import DataLoader, Dataset

        class Rows(Dataset):
            def __len__(self):
                return len(x)

            def __getitem__(self, index):
                return torch.from_numpy(np.asarray(x[index])), int(y[index].argmax())
        torch.manual_seed(0)
        widths = WORKLOADS["w3"].widths
        layers = []
        for i, (a, b) in enumerate(itertools.pairwise(widths)):
            layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(widths) - 2 else [])
        model = nn.Sequential(*layers)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        loader = DataLoader(Rows(), batch_size=batch_size, shuffle=True, num_workers=2)
        seconds = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for xb, yb in loader:
                opt.zero_grad(set_to_none=True)
                loss_fn(model(xb), yb).backward()
                opt.step()
            seconds.append(time.perf_counter() - t0)
        found["torch_dataloader_s"] = float(np.median(seconds))
    except ImportError as error:
        found["torch_dataloader"] = f"not installed ({error})"
    try:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras

        class Batches(keras.utils.PyDataset):
            def __init__(self):
                super().__init__(workers=2)

            def __len__(self):
                return int(-(-len(x) // batch_size))

            def __getitem__(self, index):
                rows = slice(index * batch_size, (index + 1) * batch_size)
                return x[rows], y[rows]
        widths = WORKLOADS["w3"].widths
        model = keras.Sequential([keras.Input((widths[0],))]
                                 + [keras.layers.Dense(w, activation="relu") for w in widths[1:-1]]
                                 + [keras.layers.Dense(widths[-1], activation="softmax")])
        model.compile("adam", "categorical_crossentropy")
        model.fit(Batches(), epochs=1, verbose=0)
        seconds = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.fit(Batches(), epochs=1, verbose=0)
            seconds.append(time.perf_counter() - t0)
        found["keras3_pydataset_s"] = float(np.median(seconds))
    except ImportError as error:
        found["keras3_pydataset"] = f"not installed ({error})"
    return found


def mount_type(path):
    """The file system type of the mount holding `path` ('tmpfs' means the files live in RAM)."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                fields = line.split()
                point = fields[1]
                if os.path.realpath(path).startswith(point) and len(point) > len(best):
                    best, kind = point, fields[2]
    except OSError:
        pass
    return kind


def run(bound_samples, speed_samples, buffer_size, repeats=3, engine="cython", directory=None, cold=True,
        with_anchors=True, workloads=("w1", "w3")):
    """Worker side: the three measurements (module docstring); files go to a temporary folder in
    `directory` (default: the system's) and are removed afterwards."""
    import tempfile
    with tempfile.TemporaryDirectory(dir=directory, prefix="fastfit-stream-") as folder:
        bound = measure_bound(folder, bound_samples, buffer_size, engine)
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        speed = measure_speed(folder, speed_samples, repeats, engine, cold, workloads)
    sequence = measure_sequence(speed_samples, repeats, engine, workloads[-1], with_anchors)
    return {"engine": engine, "filesystem": mount_type(directory or tempfile.gettempdir()), "bound": bound,
            "speed": speed, "sequence": sequence}
