"""`checkpoint_writer`: the one interface callbacks and fit use to write checkpoints, and its rule for when a
file may still be being written after `write_*` returns (only inside a fit whose callbacks run no user code)."""
import errno
import os
import threading
import time

import numpy as np
import pytest

from fastfit.callbacks import EarlyStopping, LambdaCallback
from fastfit.models import load_model
from fastfit.saving import checkpoint_writer, files, write_behind

from saving_helpers import assert_same_weights, data, mlp


@pytest.fixture
def gated_writes(monkeypatch):
    """Python writes (no native writer) that wait for `gate` once it is cleared: a write stays pending."""
    gate = threading.Event()
    gate.set()
    original = files.write_snapshot

    def gated(*args, **kwargs):
        if threading.current_thread().name.startswith("fastfit write-behind"):
            assert gate.wait(10.0)
        return original(*args, **kwargs)
    monkeypatch.setattr(files, "_filewrite", None)
    monkeypatch.setattr(files, "write_snapshot", gated)
    return gate


def _trained(seed):
    model = mlp(seed=seed)
    model.fit(*data(), epochs=1, verbose=0)
    return model


def _pending(writer):
    job = writer._background._job
    return job is not None and not job.done.is_set()


def test_outside_fit_a_write_is_complete_on_return(tmp_path, gated_writes):
    gated_writes.clear()  # a write handed to the worker would hang: none is
    writer = checkpoint_writer.CheckpointWriter()
    model = _trained(1)
    for _ in range(2):
        writer.write_model(model, str(tmp_path / "sub" / "m.h5"))  # the missing folder is created
        assert not _pending(writer)
        assert_same_weights(load_model(str(tmp_path / "sub" / "m.h5")), model)


def test_inside_a_fit_of_built_ins_the_second_write_goes_behind_and_readers_wait(tmp_path, gated_writes):
    path = str(tmp_path / "m.h5")
    first, second, third = _trained(1), _trained(2), _trained(3)
    writer = checkpoint_writer.CheckpointWriter()
    with checkpoint_writer.during_fit([EarlyStopping()]):
        writer.write_model(first, path)
        assert not _pending(writer)  # the first write of a fit is complete on return
        gated_writes.clear()
        writer.write_model(second, path)
        assert _pending(writer)
        threading.Timer(0.05, gated_writes.set).start()
        assert_same_weights(load_model(path), second)  # the reader waited for the pending write
        gated_writes.clear()
        writer.write_model(first, path)
        threading.Timer(0.05, gated_writes.set).start()
        fresh = mlp(seed=9)
        fresh.load_weights(path)
        assert_same_weights(fresh, first)
        gated_writes.clear()
        writer.write_model(second, path)
        threading.Timer(0.05, gated_writes.set).start()
        third.save(path)  # lands after the pending write, so it is what stays
        assert not _pending(writer)
    assert_same_weights(load_model(path), third)


def test_a_user_callback_in_the_fit_makes_every_write_complete_on_return(tmp_path, gated_writes):
    gated_writes.clear()
    writer = checkpoint_writer.CheckpointWriter()
    with checkpoint_writer.during_fit([EarlyStopping(), LambdaCallback()]):
        for seed in (1, 2):
            writer.write_model(_trained(seed), str(tmp_path / "m.h5"))
            assert not _pending(writer)


def test_the_end_of_a_fit_waits_and_raises_a_pending_write_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_filewrite", None)
    writer = checkpoint_writer.CheckpointWriter()
    model = _trained(1)
    path = tmp_path / "m.h5"
    real_fsync = os.fsync

    def full(fd):
        if threading.current_thread().name.startswith("fastfit write-behind"):
            time.sleep(0.05)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left on device") as error:
        with checkpoint_writer.during_fit([]):
            writer.write_model(model, str(path))
            writer.write_model(model, str(path))  # behind: fails in the worker
    assert "m.h5" in str(error.value) and os.listdir(tmp_path) == ["m.h5"]
    writer.wait()  # reported once


def test_a_fit_that_raises_still_waits_and_notes_the_write_error(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_filewrite", None)
    writer = checkpoint_writer.CheckpointWriter()
    model = _trained(1)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(RuntimeError, match="training failed") as error:
        with checkpoint_writer.during_fit([]):
            writer.write_model(model, str(tmp_path / "m.h5"))
            monkeypatch.setattr(os, "fsync", full)
            writer.write_model(model, str(tmp_path / "m.h5"))
            raise RuntimeError("training failed")
    assert any("No space left on device" in note and "m.h5" in note for note in error.value.__notes__)
    assert not _pending(writer)
    writer.wait()


def test_a_fit_that_raises_leaves_later_writes_complete_on_return(tmp_path, gated_writes):
    def fail(epoch, logs):
        raise RuntimeError("epoch-end failure")
    x, y = data()
    with pytest.raises(RuntimeError, match="epoch-end failure"):
        mlp().fit(x, y, epochs=2, verbose=0,
                  callbacks=[EarlyStopping(monitor="loss"), LambdaCallback(on_epoch_end=fail)])
    gated_writes.clear()
    writer = checkpoint_writer.CheckpointWriter()
    for seed in (1, 2):  # outside fit again: nothing is handed to the worker
        writer.write_model(_trained(seed), str(tmp_path / "m.h5"))
        assert not _pending(writer)


def test_scopes_are_per_thread_and_nest(tmp_path, gated_writes):
    writer = checkpoint_writer.CheckpointWriter()
    model = _trained(1)
    outcome = []
    with checkpoint_writer.during_fit([LambdaCallback()]):
        with checkpoint_writer.during_fit([]):  # a fit of built-ins inside a user callback
            writer.write_model(model, str(tmp_path / "a.h5"))
            gated_writes.clear()
            writer.write_model(model, str(tmp_path / "a.h5"))
            assert _pending(writer)
            other = checkpoint_writer.CheckpointWriter()
            thread = threading.Thread(target=lambda: (other.write_model(model, str(tmp_path / "b.h5")),
                                                      other.write_model(model, str(tmp_path / "b.h5")),
                                                      outcome.append(_pending(other))))
            thread.start()
            thread.join(10.0)
            gated_writes.set()
        assert not _pending(writer)  # the inner fit's end waited
        writer.write_model(model, str(tmp_path / "a.h5"))
        assert not _pending(writer)  # the outer fit has user code
    assert outcome == [False]  # another thread is outside any fit


def test_backups_use_the_same_writer(tmp_path, gated_writes):
    model = _trained(1)
    path = str(tmp_path / "backup.h5")
    writer = checkpoint_writer.CheckpointWriter()
    with checkpoint_writer.during_fit([]):
        writer.write_backup(model, path, 1, 0)
        gated_writes.clear()
        writer.write_backup(model, path, 2, 0)
        assert _pending(writer)
        gated_writes.set()
        checkpoint_writer.wait_for(path)
        assert not _pending(writer)
    from fastfit.saving import backup_file
    fresh = mlp(seed=5)
    assert backup_file.restore(fresh, path) == (2, 0)
    np.testing.assert_array_equal(fresh.get_weights()[0], model.get_weights()[0])
    assert write_behind._in_flight == {}
