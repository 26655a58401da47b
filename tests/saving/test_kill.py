"""SIGKILL a training process that checkpoints every batch, at random moments: the file on disk always loads."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from fastfit.models import load_model

from saving_helpers import REPO

TRAIN_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    import fastfit
    from fastfit.callbacks import ModelCheckpoint
    from fastfit.layers import Dense, Dropout
    from fastfit.models import Sequential
    path = sys.argv[1]
    fastfit.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 64)).astype("float32")
    y = fastfit.utils.to_categorical(rng.integers(0, 10, size=512), 10)
    model = Sequential([Dense(256, input_dim=64, activation="relu"), Dropout(0.1), Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    print("ready", flush=True)
    model.fit(x, y, epochs=1000, batch_size=32, verbose=0, callbacks=[ModelCheckpoint(path, save_freq=1)])
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")
def test_checkpoint_on_disk_always_loads_after_sigkill(tmp_path):
    path = str(tmp_path / "ckpt.h5")
    rng = np.random.default_rng(42)
    env = dict(os.environ, PYTHONPATH=REPO, FASTFIT_ENGINE="python")
    iterations, mid_write = [], 0
    previous = None
    for _kill in range(5):
        proc = subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, path], stdout=subprocess.PIPE, text=True,
                                env=env)
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while _inode(path) == previous and time.monotonic() < deadline:  # the first checkpoint of this run
            time.sleep(0.002)
        time.sleep(float(rng.uniform(0.0, 0.15)))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        model = load_model(path)  # never half-written
        assert model.predict(np.zeros((1, 64), "float32")).shape == (1, 10)
        iterations.append(model.optimizer.iterations)
        previous = _inode(path)
        leftovers = [name for name in os.listdir(tmp_path) if name != "ckpt.h5"]
        assert all(name.startswith(".ckpt.h5.") and name.endswith(".tmp") for name in leftovers)
        for name in leftovers:  # a killed writer may leave its temporary file; never the target
            os.remove(tmp_path / name)
        mid_write += bool(leftovers)
    print(f"{mid_write} of 5 kills landed while a checkpoint was being written")
    assert max(iterations) > 1  # the kills landed during training, after several checkpoints


def _inode(path):
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None
