"""BackupAndRestore: backups during fit, deletion at the end, restore after an interruption (also a real kill)."""
import inspect
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from fastfit.callbacks import BackupAndRestore, LambdaCallback
from fastfit.engine import training

from saving_helpers import REPO, assert_same_weights, data, mlp

# `fit` must start from `resume_point` (the lead's loop reads it after on_train_begin).
resumable_fit = pytest.mark.skipif("resume_point" not in inspect.getsource(training),
                                   reason="fit does not read BackupAndRestore.resume_point yet")


class Interrupt(Exception):
    pass


def _interrupt_at(epoch, batch=None):
    """A callback that raises at the end of `epoch` (or of `batch` in it), like a crash."""
    state = {"epoch": None}

    def epoch_begin(e, logs):
        state["epoch"] = e

    def batch_end(b, logs):
        if batch is not None and state["epoch"] == epoch and b == batch:
            raise Interrupt

    def epoch_end(e, logs):
        if batch is None and e == epoch:
            raise Interrupt
    return LambdaCallback(on_epoch_begin=epoch_begin, on_batch_end=batch_end, on_epoch_end=epoch_end)


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="save_freq"):
        BackupAndRestore(str(tmp_path), save_freq=0)
    with pytest.raises(ValueError, match="save_freq"):
        BackupAndRestore(str(tmp_path), save_freq="batch")
    with pytest.raises(TypeError, match="backup_dir"):
        BackupAndRestore(None)


def test_completed_fit_deletes_the_backup(tmp_path):
    x, y = data()
    backup = BackupAndRestore(tmp_path / "bk")
    mlp().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[backup])
    assert os.listdir(tmp_path / "bk") == []
    keep = BackupAndRestore(tmp_path / "keep", delete_checkpoint=False)
    mlp().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[keep])
    assert os.listdir(tmp_path / "keep") == ["backup.h5"]


def test_interrupted_fit_keeps_a_backup_of_the_last_completed_epoch(tmp_path):
    x, y = data()
    model = mlp()
    snapshots = []
    keep = LambdaCallback(on_epoch_end=lambda e, l: snapshots.append(model.get_weights()))
    with pytest.raises(Interrupt):
        model.fit(x, y, epochs=5, batch_size=16, verbose=0,
                  callbacks=[keep, BackupAndRestore(str(tmp_path)), _interrupt_at(2)])
    # epoch 2 raised in its on_epoch_end after BackupAndRestore ran: the backup holds the end of epoch 2
    fresh = mlp()
    restorer = BackupAndRestore(str(tmp_path))
    restorer.set_model(fresh)
    restorer.set_params({"epochs": 5, "steps": 3})
    restorer.on_train_begin({})
    assert restorer.resume_point == (3, 0)
    for a, b in zip(fresh.get_weights(), snapshots[2]):
        np.testing.assert_array_equal(a, b)
    assert fresh.optimizer.iterations == model.optimizer.iterations == 9


def test_batch_save_freq_records_the_position_in_the_epoch(tmp_path):
    x, y = data(n=48)
    with pytest.raises(Interrupt):
        mlp().fit(x, y, epochs=3, batch_size=8, verbose=0,
                  callbacks=[BackupAndRestore(str(tmp_path), save_freq=2), _interrupt_at(1, batch=4)])
    restorer = BackupAndRestore(str(tmp_path))
    fresh = mlp()
    restorer.set_model(fresh)
    restorer.set_params({"epochs": 3, "steps": 6})
    restorer.on_train_begin({})
    # batches 0-5 of epoch 0, then 0-4 of epoch 1 ran; saves every 2 batches: the last after batch 3 (4 done)
    assert restorer.resume_point == (1, 4)
    assert fresh.optimizer.iterations == 10


def test_backup_of_another_model_is_a_clear_error(tmp_path):
    x, y = data()
    mlp().fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(str(tmp_path), delete_checkpoint=False)])
    from fastfit.layers import Dense
    from fastfit.models import Sequential
    other = Sequential([Dense(2, input_dim=x.shape[1])])
    other.compile("sgd", "mse")
    with pytest.raises(ValueError, match="delete the backup folder"):
        other.fit(x, y[:, :2], epochs=1, verbose=0, callbacks=[BackupAndRestore(str(tmp_path))])


@resumable_fit
@pytest.mark.parametrize("save_freq", ["epoch", 2])
def test_rerun_after_an_interruption_ends_like_an_uninterrupted_run(tmp_path, core, save_freq):
    x, y = data(n=48)
    straight = mlp(core)
    straight.fit(x, y, epochs=5, batch_size=8, verbose=0)
    with pytest.raises(Interrupt):
        mlp(core).fit(x, y, epochs=5, batch_size=8, verbose=0,
                        callbacks=[BackupAndRestore(str(tmp_path), save_freq=save_freq), _interrupt_at(2, batch=3)])
    rerun = mlp(core)
    history = rerun.fit(x, y, epochs=5, batch_size=8, verbose=0,
                        callbacks=[BackupAndRestore(str(tmp_path), save_freq=save_freq)])
    assert len(history.history["loss"]) == 3  # epochs 2, 3, 4
    assert_same_weights(rerun, straight)
    assert os.listdir(tmp_path) == []


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from saving_helpers import data, mlp
    from fastfit.callbacks import BackupAndRestore, LambdaCallback
    backup_dir, out = sys.argv[2], sys.argv[3]
    x, y = data(n=64)
    model = mlp()
    slow = LambdaCallback(on_batch_end=lambda b, l: time.sleep(0.002),
                          on_epoch_end=lambda e, l: print("epoch", e, flush=True))
    model.fit(x, y, epochs=6, batch_size=8, verbose=0, callbacks=[BackupAndRestore(backup_dir), slow])
    np.save(out, np.concatenate([w.ravel() for w in model.get_weights()]))
""")


@resumable_fit
def test_killed_script_rerun_ends_with_the_uninterrupted_weights(tmp_path):
    x, y = data(n=64)
    straight = mlp()
    straight.fit(x, y, epochs=6, batch_size=8, verbose=0)
    expected = np.concatenate([w.ravel() for w in straight.get_weights()])
    args = [sys.executable, "-c", KILL_SCRIPT, os.path.dirname(__file__), str(tmp_path / "bk"),
            str(tmp_path / "out.npy")]
    env = dict(os.environ, PYTHONPATH=REPO)
    victim = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    for line in victim.stdout:  # kill somewhere inside epoch 3
        if line.startswith("epoch 2"):
            time.sleep(0.008)
            victim.send_signal(signal.SIGKILL)
            break
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    names = os.listdir(tmp_path / "bk")  # the backup, and the temporary file of a write the kill cut short
    assert "backup.h5" in names and all(n == "backup.h5" or n.startswith(".backup.h5.") for n in names), names
    rerun = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert rerun.stdout.splitlines()[0] in ("epoch 2", "epoch 3")  # resumed, not restarted at epoch 0
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    assert [n for n in os.listdir(tmp_path / "bk") if not n.startswith(".")] == []


@resumable_fit
def test_backup_restores_seeds_into_a_differently_seeded_rerun(tmp_path):
    """An unseeded script draws other seeds on the rerun; the backup's shuffling and dropout seeds win."""
    x, y = data(n=48)
    straight = mlp(seed=7)
    straight.fit(x, y, epochs=4, batch_size=8, verbose=0)
    with pytest.raises(Interrupt):
        mlp(seed=7).fit(x, y, epochs=4, batch_size=8, verbose=0,
                        callbacks=[BackupAndRestore(str(tmp_path)), _interrupt_at(1)])
    rerun = mlp(seed=8)  # other initial weights, shuffling seed and dropout seed
    rerun.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[BackupAndRestore(str(tmp_path))])
    assert_same_weights(rerun, straight)
