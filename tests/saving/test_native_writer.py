"""The native writer thread (`fastfit._ext._filewrite`) and ModelCheckpoint's use of it for small files."""
import errno
import os
import shutil
import stat

import h5py
import numpy as np
import pytest

from fastfit.callbacks import LambdaCallback, ModelCheckpoint
from fastfit.models import load_model
from fastfit.saving import files, image, model_file, write_behind

from saving_helpers import data, mlp

_filewrite = pytest.importorskip("fastfit._ext._filewrite", reason="the native writer is built on Linux only")


def _write(tmp_path, target, body=b"body", header=b"head", flush=True):
    """Write through the native thread and wait: None, or (errno, step) of the failure."""
    job = _filewrite.FileWrite(os.fsencode(tmp_path), os.fsencode(target), header, body, flush, 0o022)
    job.start()
    failure = job.wait()
    assert job.done()
    return failure


def test_writes_header_and_body_atomically_through_the_temporary_file(tmp_path):
    target = tmp_path / "f.bin"
    assert _write(tmp_path / ".f.tmp", target, body=bytearray(range(256)) * 100) is None
    assert target.read_bytes() == b"head" + bytes(range(256)) * 100
    assert os.listdir(tmp_path) == ["f.bin"]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644  # 0o666 less the umask passed


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    assert _write(tmp_path / ".f.tmp", target) is None
    assert target.read_bytes() == b"headbody" and stat.S_IMODE(os.stat(target).st_mode) == 0o600
    os.chmod(target, 0o666)  # bits the umask would take away are given back
    assert _write(tmp_path / ".f2.tmp", target) is None
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666


def test_failures_report_errno_and_step_and_leave_the_target_alone(tmp_path):
    (tmp_path / "dir").mkdir()
    assert _write(tmp_path / ".d.tmp", tmp_path / "dir") == (errno.EISDIR, _filewrite.STEP_TARGET)
    assert _write(tmp_path / "no" / ".x.tmp", tmp_path / "no" / "x") == (errno.ENOENT, _filewrite.STEP_CREATE)
    (tmp_path / "taken.tmp").write_bytes(b"someone else's")
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")
    assert _write(tmp_path / "taken.tmp", target) == (errno.EEXIST, _filewrite.STEP_CREATE)
    assert target.read_bytes() == b"old" and (tmp_path / "taken.tmp").read_bytes() == b"someone else's"
    assert sorted(os.listdir(tmp_path)) == ["dir", "t.bin", "taken.tmp"]


def test_jobs_run_in_start_order(tmp_path):
    target = tmp_path / "f"
    jobs = [_filewrite.FileWrite(os.fsencode(tmp_path / f".{i}.tmp"), os.fsencode(target), b"", str(i).encode(),
                                 False, 0o022) for i in range(50)]
    for job in jobs:
        job.start()
    jobs[-1].wait()
    assert all(job.done() for job in jobs) and target.read_text() == "49"
    for job in jobs:
        job.wait()
    assert os.listdir(tmp_path) == ["f"]


def test_start_twice_and_wait_before_start_are_errors(tmp_path):
    job = _filewrite.FileWrite(os.fsencode(tmp_path / ".t"), os.fsencode(tmp_path / "t"), b"", b"", False, 0)
    assert not job.done()
    with pytest.raises(RuntimeError, match="not started"):
        job.wait()
    job.start()
    with pytest.raises(RuntimeError, match="already started"):
        job.start()
    job.wait()
    job.wait()  # waiting again returns at once
    assert (tmp_path / "t").read_bytes() == b""


def test_bad_arguments_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(TypeError):
        _filewrite.FileWrite("not bytes", b"t", b"", b"", False, 0)
    with pytest.raises((TypeError, ValueError, BufferError)):
        _filewrite.FileWrite(b"t.tmp", b"t", b"", np.zeros((2, 2))[:, 0].view(np.uint8), False, 0)  # not contiguous


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_writer_thread(tmp_path):
    _write(tmp_path / ".p.tmp", tmp_path / "parent")  # the parent's thread is running
    pid = os.fork()
    if pid == 0:  # child: exit code 0 only if its own write landed
        try:
            ok = (_write(tmp_path / ".c.tmp", tmp_path / "child", body=b"child") is None
                  and (tmp_path / "child").read_bytes() == b"headchild")
        finally:
            os._exit(0 if ok else 1)
    assert os.waitpid(pid, 0)[1] == 0


@pytest.mark.parametrize("checksum_in", ["writer thread", "python"])
def test_the_native_file_is_the_file_write_snapshot_writes(tmp_path, monkeypatch, checksum_in):
    if checksum_in == "python":
        monkeypatch.setattr(_filewrite, "has_crc32", lambda: False)
    else:
        assert _filewrite.has_crc32()  # libz is loaded by Python's zlib module on Linux builds
    x, y = data()
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0)
    capture = model_file.Capture()
    files.write_snapshot(str(tmp_path / "first.h5"), capture(model), True, "model file")  # lays the file out
    content = capture(model)
    assert isinstance(content, image.FileImage)
    files.write_snapshot(str(tmp_path / "python.h5"), content, True, "model file")
    native = files.start_image_write(str(tmp_path / "native.h5"), content, "model file")
    assert native is not None and native.wait() is None
    assert (tmp_path / "native.h5").read_bytes() == (tmp_path / "python.h5").read_bytes()
    for a, b in zip(load_model(str(tmp_path / "native.h5")).get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def native_starts(monkeypatch):
    """Counts the checkpoints ModelCheckpoint hands to the native writer."""
    started = []
    original = files.start_image_write

    def counted(*args):
        job = original(*args)
        started.append(job is not None)
        return job
    monkeypatch.setattr(files, "start_image_write", counted)
    return started


def test_model_checkpoint_writes_later_epochs_natively(tmp_path, native_starts):
    # (that each file holds its own epoch's weights: test_write_behind, with the native writer too)
    x, y = data()
    model = mlp()
    model.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[ModelCheckpoint(str(tmp_path / "e{epoch}.h5"))])
    assert native_starts and all(native_starts)  # every save after the first (which lays the file out)
    assert sorted(os.listdir(tmp_path)) == ["e1.h5", "e2.h5", "e3.h5", "e4.h5"]
    for saved, weights in zip(load_model(str(tmp_path / "e4.h5")).get_weights(), model.get_weights()):
        np.testing.assert_array_equal(saved, weights)


def _before_third_save(path, change):
    """A callback (listed before ModelCheckpoint) that calls `change()` once the second checkpoint of `path`
    (the first native one) has landed, before the third save."""
    def at_epoch_end(epoch, logs):
        if epoch == 2:
            write_behind.wait_for(str(path))
            change()
    return LambdaCallback(on_epoch_end=at_epoch_end)


def test_a_folder_in_the_way_of_a_native_write_is_raised_naming_the_file(tmp_path, native_starts):
    x, y = data()
    path = tmp_path / "m.h5"
    in_the_way = _before_third_save(path, lambda: (path.unlink(), path.mkdir()))
    with pytest.raises(IsADirectoryError, match="m.h5.*it is a folder"):
        mlp().fit(x, y, epochs=5, verbose=0, callbacks=[in_the_way, ModelCheckpoint(str(path))])
    assert any(native_starts) and path.is_dir() and os.listdir(tmp_path) == ["m.h5"]  # no temporary file left


def test_a_folder_removed_during_training_is_created_again(tmp_path, native_starts):
    x, y = data()
    folder = tmp_path / "ckpt"
    model = mlp()
    remove = _before_third_save(folder / "m.h5", lambda: shutil.rmtree(folder))
    model.fit(x, y, epochs=3, verbose=0, callbacks=[remove, ModelCheckpoint(str(folder / "m.h5"))])
    assert any(native_starts) and os.listdir(folder) == ["m.h5"]
    for a, b in zip(load_model(str(folder / "m.h5")).get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_file_in_place_of_the_folder_is_raised_naming_it(tmp_path, native_starts):
    x, y = data()
    folder = tmp_path / "ckpt"
    replace = _before_third_save(folder / "m.h5", lambda: (shutil.rmtree(folder), folder.write_bytes(b"not a folder")))
    with pytest.raises(NotADirectoryError, match="ckpt.*is not a folder"):
        mlp().fit(x, y, epochs=4, verbose=0, callbacks=[replace, ModelCheckpoint(str(folder / "m.h5"))])
    assert any(native_starts) and folder.read_bytes() == b"not a folder"


def test_copy_slots_copies_only_when_every_array_fits():
    buffer = bytearray(32)
    targets = [np.ndarray((2,), np.float32, buffer=buffer, offset=0), np.ndarray((), np.int64, buffer=buffer, offset=8)]
    good = [np.array([1.5, 2.5], np.float32), np.array(7, np.int64)]
    assert _filewrite.copy_slots(buffer, [0, 8], targets, good)
    assert targets[0].tolist() == [1.5, 2.5] and int(targets[1]) == 7
    for bad in ([np.array([1.0, 2.0]), good[1]],                          # float64 into a float32 slot
                [np.zeros(3, np.float32), good[1]],                         # wrong shape
                [np.zeros(4, np.float32)[::2], good[1]],                    # not contiguous
                [[1.0, 2.0], good[1]],                                      # not an ndarray
                [good[0], np.array(9, np.dtype(">i8"))]):                   # other byte order
        assert not _filewrite.copy_slots(buffer, [0, 8], targets, bad)
        assert targets[0].tolist() == [1.5, 2.5] and int(targets[1]) == 7   # nothing copied
    with pytest.raises(ValueError, match="outside"):
        _filewrite.copy_slots(buffer, [0, 30], targets, good)
    with pytest.raises(ValueError, match="offsets"):
        _filewrite.copy_slots(buffer, [0], targets, good)


def _capture_with_image(tmp_path):
    """A trained model and a Capture of it whose next captures refill a FileImage."""
    model = mlp()
    model.fit(*data(), epochs=1, verbose=0)
    capture = model_file.Capture()
    files.write_snapshot(str(tmp_path / "a.h5"), capture(model), True, "model file")  # lays the file out
    assert isinstance(capture(model), image.FileImage)
    return model, capture


def test_capture_takes_a_full_snapshot_when_an_array_changes_shape(tmp_path):
    model, capture = _capture_with_image(tmp_path)
    layer = model.layers[0]
    layer.bias = np.asfortranarray(np.ones((1, layer.bias.shape[0]), layer.bias.dtype))  # (n,) -> (1, n)
    content = capture(model)
    assert not isinstance(content, image.FileImage)  # a fresh snapshot with the new shape
    files.write_snapshot(str(tmp_path / "b.h5"), content, True, "model file")
    with h5py.File(tmp_path / "b.h5", "r") as saved:
        assert saved["model_weights"][layer.name][layer.name]["bias:0"].shape == (1, layer.bias.shape[1])


def test_file_image_takes_views_and_other_layouts_through_numpy(tmp_path):
    model, capture = _capture_with_image(tmp_path)
    layer = model.layers[0]
    layer.kernel = np.asfortranarray(layer.kernel + 1)  # same shape and dtype, not C-contiguous
    content = capture(model)
    assert isinstance(content, image.FileImage)
    files.write_snapshot(str(tmp_path / "b.h5"), content, True, "model file")
    np.testing.assert_array_equal(load_model(str(tmp_path / "b.h5")).layers[0].kernel, layer.kernel)


def test_the_writer_thread_puts_the_crc32_into_the_header(tmp_path):
    import zlib
    body = bytes(range(256)) * 3000
    header = bytearray(b"crc=00000000;")
    job = _filewrite.FileWrite(os.fsencode(tmp_path / ".t"), os.fsencode(tmp_path / "t"), header, body, False,
                               0o022, 4)
    job.start()
    job.wait()
    assert (tmp_path / "t").read_bytes() == b"crc=%08x;" % zlib.crc32(body) + body
    with pytest.raises(TypeError, match="writable"):
        _filewrite.FileWrite(b"a", b"b", b"crc=00000000;", body, False, 0, 4)
    with pytest.raises(ValueError, match="no room"):
        _filewrite.FileWrite(b"a", b"b", bytearray(10), body, False, 0, 4)


@pytest.mark.parametrize("setting", ["1", "0"])
def test_the_last_native_checkpoint_of_a_fit_is_fsynced_when_it_ends(tmp_path, monkeypatch, native_starts, setting):
    monkeypatch.setenv("FASTFIT_FSYNC", setting)
    synced = []
    original = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or original(fd))
    x, y = data()
    mlp().fit(x, y, epochs=3, verbose=0, callbacks=[ModelCheckpoint(str(tmp_path / "e{epoch}.h5"))])
    assert native_starts[-1]  # e3.h5 came from the native writer
    expected = [str(tmp_path / "e3.h5")] if setting == "1" else []
    assert [path for path in synced if not path.endswith(".tmp")] == expected


def test_arrays_that_no_longer_fit_with_unchanged_attributes_get_a_full_capture(tmp_path):
    # The optimizer's slot list is the same object (no attribute was set), but one slot array changed shape.
    model, capture = _capture_with_image(tmp_path)
    slots = model.optimizer.slots[0]
    slots[0] = np.zeros((1,) + slots[0].shape, slots[0].dtype)
    content = capture(model)
    assert not isinstance(content, image.FileImage)
    assert content.structure() == model_file.model_snapshot(model).structure()
