"""Write-behind checkpoints: captured at save time, on disk when fit returns, errors reach the caller."""
import errno
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from fastfit.callbacks import BackupAndRestore, EarlyStopping, LambdaCallback, ModelCheckpoint
from fastfit.models import load_model
from fastfit.saving import files, write_behind

from saving_helpers import REPO, data, mlp


@pytest.fixture(params=["python", "native"])
def slow_writes(request, monkeypatch):
    """Background writes start late, so they are still pending when the training thread moves on; in the
    Python worker, or (where it is built) in the native writer thread for small files."""
    original = files.write_snapshot

    def slow(*args, **kwargs):
        time.sleep(0.05)
        return original(*args, **kwargs)
    monkeypatch.setattr(files, "write_snapshot", slow)
    if request.param == "python":
        monkeypatch.setattr(files, "_filewrite", None)
    elif files._filewrite is None:
        pytest.skip("no native writer on this platform")
    else:
        monkeypatch.setattr(files._filewrite, "FileWrite", _slow_native_write(files._filewrite.FileWrite))


def _slow_native_write(native):
    class SlowStart(native):
        """Queued to the native thread 50 ms after `start`."""

        def start(self):
            self.begun = threading.Event()

            def go():
                native.start(self)
                self.begun.set()
            threading.Timer(0.05, go).start()

        def wait(self):
            self.begun.wait()
            return native.wait(self)
    return SlowStart


def test_every_checkpoint_is_on_disk_and_holds_its_epoch_when_fit_returns(tmp_path, slow_writes):
    x, y = data()
    model = mlp()
    at_save = []
    keep = LambdaCallback(on_epoch_end=lambda e, l: at_save.append(model.get_weights()))
    model.fit(x, y, epochs=3, batch_size=16, verbose=0,
              callbacks=[keep, ModelCheckpoint(str(tmp_path / "e{epoch}.h5"))])
    assert sorted(os.listdir(tmp_path)) == ["e1.h5", "e2.h5", "e3.h5"]  # no temporary file still pending
    for epoch, expected in enumerate(at_save):  # the weights of that epoch end, not later ones
        for saved, weights in zip(load_model(str(tmp_path / f"e{epoch + 1}.h5")).get_weights(), expected):
            np.testing.assert_array_equal(saved, weights)


def test_the_first_checkpoint_of_a_fit_is_on_disk_before_the_next_epoch(tmp_path, slow_writes):
    """So an unwritable folder or a full disk stops training at the first save, as a synchronous save would."""
    x, y = data()
    path = tmp_path / "m.h5"
    seen = []
    probe = LambdaCallback(on_epoch_begin=lambda e, l: seen.append(path.exists()))
    mlp().fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[ModelCheckpoint(str(path)), probe])
    assert seen == [False, True, True]


def test_weights_only_checkpoint_is_written_behind_too(tmp_path, slow_writes):
    x, y = data()
    model = mlp()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0,
              callbacks=[ModelCheckpoint(str(tmp_path / "w.h5"), save_weights_only=True)])
    fresh = mlp()
    fresh.load_weights(str(tmp_path / "w.h5"))
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def _failing_fsync_after(monkeypatch, good_calls, calls):
    """fsync succeeds `good_calls` times, then fails with a full disk (recording the failing threads)."""
    real = os.fsync

    def full(fd):
        if good_calls:
            good_calls.pop()
            return real(fd)
        calls.append(threading.current_thread().name)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)


def test_background_error_is_raised_at_train_end_and_keeps_the_previous_file(tmp_path, monkeypatch):
    # Built-in callbacks only: the second checkpoint is written behind (the first of a fit never is), by the
    # Python worker here (no native writer, which does not fsync).
    monkeypatch.setattr(files, "_filewrite", None)
    x, y = data()
    path = tmp_path / "m.h5"
    calls = []
    _failing_fsync_after(monkeypatch, [1], calls)
    with pytest.raises(OSError, match="No space left on device") as error:
        mlp().fit(x, y, epochs=2, verbose=0, callbacks=[ModelCheckpoint(str(path))])
    assert "m.h5" in str(error.value)
    assert calls and all(name.startswith("fastfit write-behind") for name in calls)  # it was written behind
    assert load_model(str(path)).optimizer.iterations == 2 and os.listdir(tmp_path) == ["m.h5"]  # epoch 1's


def test_background_error_is_raised_by_the_next_save(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_filewrite", None)
    x, y = data()
    calls = []
    _failing_fsync_after(monkeypatch, [1], calls)
    checkpoint = ModelCheckpoint(str(tmp_path / "e{epoch}.h5"))
    with pytest.raises(OSError, match="No space left") as error:
        mlp().fit(x, y, epochs=5, verbose=0, callbacks=[checkpoint, EarlyStopping(monitor="loss", patience=10)])
    assert "e2.h5" in str(error.value)  # epoch 2's write failed; epoch 3's save raised it
    assert len(calls) == 1 and os.listdir(tmp_path) == ["e1.h5"]
    checkpoint.on_train_end({})  # the error was handed over once, not kept


def test_with_a_user_callback_after_it_the_error_is_raised_by_the_save_itself(tmp_path, monkeypatch):
    x, y = data()
    calls = []
    _failing_fsync_after(monkeypatch, [1], calls)
    monkeypatch.setattr(files, "_filewrite", None)
    seen = []
    with pytest.raises(OSError, match="No space left") as error:
        mlp().fit(x, y, epochs=5, verbose=0, callbacks=[ModelCheckpoint(str(tmp_path / "e{epoch}.h5")),
                                                        LambdaCallback(on_epoch_end=lambda e, l: seen.append(e))])
    assert "e2.h5" in str(error.value) and seen == [0]  # raised by epoch 2's hook, before the next callback
    assert calls == ["MainThread"] and os.listdir(tmp_path) == ["e1.h5"]


def test_backup_is_written_behind_and_deleted_after_it_landed(tmp_path, slow_writes):
    x, y = data()
    mlp().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[BackupAndRestore(str(tmp_path))])
    assert os.listdir(tmp_path) == []  # the last backup did not land after its deletion


def test_readers_and_direct_saves_wait_for_a_pending_write(tmp_path):
    path = str(tmp_path / "m.h5")
    old, new = mlp(seed=1), mlp(seed=2)
    old.save(path)
    release = threading.Event()
    writer = write_behind.BackgroundWriter()
    writer.submit(path, lambda: (release.wait(5), new.save(path)))
    threading.Timer(0.05, release.set).start()
    for a, b in zip(load_model(path).get_weights(), new.get_weights()):  # not the old file
        np.testing.assert_array_equal(a, b)
    writer.submit(path, lambda: (time.sleep(0.05), new.save(path)))
    old.save(path)  # lands after the pending write, so it is what stays
    writer.wait()
    for a, b in zip(load_model(path).get_weights(), old.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_writer_runs_one_write_at_a_time_in_order():
    order = []
    writer = write_behind.BackgroundWriter()
    for i in range(5):
        writer.submit(f"file{i}", lambda i=i: (time.sleep(0.002 * (5 - i)), order.append(i)))
    writer.wait()
    assert order == [0, 1, 2, 3, 4]
    writer.wait()  # nothing pending: returns


CRASH_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[2])
    from saving_helpers import data, mlp
    from fastfit.callbacks import LambdaCallback, ModelCheckpoint
    from fastfit.saving import files
    original = files.write_snapshot
    def slow(*args, **kwargs):
        time.sleep(0.2)
        return original(*args, **kwargs)
    files.write_snapshot = slow
    def fail(epoch, logs):
        raise RuntimeError("a later callback failed")
    x, y = data()
    mlp().fit(x, y, epochs=3, verbose=0, callbacks=[ModelCheckpoint(sys.argv[1]), LambdaCallback(on_epoch_end=fail)])
""")


def test_pending_write_lands_when_fit_raises_and_the_process_exits(tmp_path):
    """fit skips on_train_end on an exception; the non-daemon writer still finishes before the interpreter exits."""
    path = tmp_path / "m.h5"
    result = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(path), os.path.dirname(__file__)],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=REPO, FASTFIT_ENGINE="python"))
    assert result.returncode == 1 and "a later callback failed" in result.stderr
    assert os.listdir(tmp_path) == ["m.h5"]
    assert load_model(str(path)).optimizer.iterations == 2  # epoch 1's checkpoint: 48 samples, batches of 32


@pytest.mark.parametrize("failing", ["user callback", "built-in"])
def test_pending_checkpoint_is_on_disk_when_fit_raises(tmp_path, slow_writes, monkeypatch, failing):
    """fit skips on_train_end when a callback raises, but waits for the checkpoints it wrote behind (with only
    built-ins listed, the failing one a built-in made to fail here, epoch 2's checkpoint was written behind)."""
    x, y = data()
    path = tmp_path / "m.h5"

    def fail(*args):
        if args[-2] == 1:
            raise RuntimeError("a later callback failed")
    if failing == "built-in":
        monkeypatch.setattr(EarlyStopping, "on_epoch_end", fail)
        later = EarlyStopping(monitor="loss")
    else:
        later = LambdaCallback(on_epoch_end=fail)
    with pytest.raises(RuntimeError, match="a later callback failed"):
        mlp().fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[ModelCheckpoint(str(path)), later])
    at_raise = path.read_bytes()  # read directly: fastfit's own reader would wait for a pending write
    write_behind.finish_pending()
    assert path.read_bytes() == at_raise  # epoch 2's save had landed before the exception reached us
    assert load_model(str(path)).optimizer.iterations == 2 * int(np.ceil(len(x) / 16))
