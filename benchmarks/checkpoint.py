"""What one checkpoint costs: `model.save` of the W3 model (weights + Adam state) to HDF5.

The median is the steady state of repeated checkpoints: the HDF5 layout of a model is built by its first
save and reused (fastfit.saving.image). `new_layout_median_ms` times saves that build it afresh.
"""
import os
import statistics
import tempfile
import time

from .engines import FastfitTrainer
from .workloads import WORKLOADS, make_data


def run(repeats, engine="cython", seed=0):
    """Worker side: time `model.save` of a trained W3 model.

    Arguments:
        repeats: number of saves; the median is reported.
        engine: fastfit engine used for the short training that creates the optimizer state.
        seed: data seed.

    Returns:
        dict with `median_ms`, `times_ms`, `new_layout_median_ms` (saves with the layout cache cleared),
        `file_bytes` and `params`.
    """
    from fastfit.saving import image
    w = WORKLOADS["w3"]
    x, y, y_int = make_data(2 * w.batch_size, seed)
    trainer = FastfitTrainer(w, {"x": x, "y": y, "y_int": y_int}, engine=engine)
    trainer.epoch()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "w3.h5")
        trainer.model.save(path)        # warm-up: h5py import, first file
        for _ in range(repeats):
            t0 = time.perf_counter()
            trainer.model.save(path)
            times.append((time.perf_counter() - t0) * 1e3)
        fresh = []
        for _ in range(3):
            image.clear_cache()
            t0 = time.perf_counter()
            trainer.model.save(path)
            fresh.append((time.perf_counter() - t0) * 1e3)
        size = os.path.getsize(path)
    return {"median_ms": statistics.median(times), "times_ms": times,
            "new_layout_median_ms": statistics.median(fresh), "file_bytes": size, "params": w.n_params()}
