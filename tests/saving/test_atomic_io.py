"""Atomic writes: the target appears whole or not at all, temp files are cleaned up, errors are clear."""
import os
import subprocess
import sys
import textwrap

import pytest

from fastfit.utils import io_utils

from saving_helpers import REPO, mlp


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "log.csv"
    with io_utils.atomic_write(path, "w", newline="") as f:
        f.write("a,b\n")
    with io_utils.atomic_write(path, "a", newline="") as f:  # atomic append = copy + append + replace
        f.write("1,2\n")
    assert path.read_text() == "a,b\n1,2\n"
    assert os.listdir(tmp_path) == ["log.csv"]


def test_new_files_get_the_default_mode_and_replaced_files_keep_theirs(tmp_path):
    new = tmp_path / "new.bin"
    with io_utils.atomic_write(new, "wb") as f:
        f.write(b"x")
    assert os.stat(new).st_mode & 0o777 == 0o666 & ~io_utils.UMASK  # what open(path, 'w') gives
    for mode in (0o640, 0o666, 0o604):  # 0o666 and 0o604: bits the usual umask (0o022) takes away
        kept = tmp_path / f"kept{mode:o}.bin"
        kept.write_bytes(b"old")
        os.chmod(kept, mode)
        with io_utils.atomic_write(kept, "wb") as f:
            f.write(b"new")
        assert kept.read_bytes() == b"new" and os.stat(kept).st_mode & 0o777 == mode


def test_error_inside_the_block_keeps_the_previous_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with io_utils.atomic_write(path, "wb") as f:
            f.write(b"half")
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["data.bin"]


def test_keyboard_interrupt_inside_the_block_cleans_up(tmp_path):
    path = tmp_path / "data.bin"
    with pytest.raises(KeyboardInterrupt):
        with io_utils.atomic_path(path) as tmp:
            open(tmp, "wb").write(b"x")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_missing_folder_is_an_error_and_not_created(tmp_path):
    target = tmp_path / "nope" / "model.h5"
    with pytest.raises(FileNotFoundError, match="nope"):
        mlp().save(str(target))
    assert not target.parent.exists()


def test_bad_mode_and_bad_path():
    with pytest.raises(ValueError, match="mode"):
        with io_utils.atomic_write("x", "r"):
            pass
    with pytest.raises(TypeError, match="path"):
        with io_utils.atomic_write(3.5, "w"):
            pass


def test_target_is_a_folder(tmp_path):
    (tmp_path / "m.h5").mkdir()
    with pytest.raises(IsADirectoryError, match="m.h5"):
        mlp().save(str(tmp_path / "m.h5"))


def _run(script, *args, preexec_fn=None):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=REPO, FASTFIT_ENGINE="python"),
                          preexec_fn=preexec_fn)


SAVE_SCRIPT = """
    import sys
    sys.path.insert(0, sys.argv[2])
    from saving_helpers import mlp
    try:
        mlp(dropout=0).save(sys.argv[1])
    except OSError as error:
        print(type(error).__name__, "|", error)
"""


def _saved_previous(tmp_path):
    path = tmp_path / "m.h5"
    model = mlp()
    model.save(str(path))
    return path, path.read_bytes()


@pytest.mark.skipif(not hasattr(os, "setuid"), reason="POSIX only")
def test_read_only_folder(tmp_path):
    """An unprivileged user cannot write the folder: a clear PermissionError, previous file intact."""
    path, before = _saved_previous(tmp_path)
    os.chmod(tmp_path, 0o555)
    try:
        if os.geteuid() == 0:  # root ignores permissions: run the writer as nobody
            nobody = 65534

            def drop():
                os.setgid(nobody)
                os.setuid(nobody)
            try:
                result = _run(SAVE_SCRIPT, str(path), os.path.dirname(__file__), preexec_fn=drop)
            except OSError as error:
                pytest.skip(f"cannot run Python as an unprivileged user here ({error})")
        else:
            result = _run(SAVE_SCRIPT, str(path), os.path.dirname(__file__))
    finally:
        os.chmod(tmp_path, 0o755)
    if "PermissionError" not in result.stdout and result.returncode != 0:
        pytest.skip(f"cannot run as an unprivileged user here: {result.stderr[-300:]}")
    assert result.stdout.startswith("PermissionError |"), result.stdout + result.stderr
    assert "m.h5" in result.stdout
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.h5"]


@pytest.mark.skipif(sys.platform != "linux", reason="uses RLIMIT_FSIZE")
def test_disk_full_keeps_previous_file(tmp_path):
    """Writes fail part-way (file size limit, as when the disk fills): OSError, previous file intact, no temp."""
    path, before = _saved_previous(tmp_path)
    script = textwrap.dedent("""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    """) + textwrap.dedent(SAVE_SCRIPT)
    result = _run(script, str(path), os.path.dirname(__file__))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "m.h5" in result.stdout and "Error" in result.stdout, result.stdout
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.h5"]


def test_unwritable_folder_message(tmp_path, monkeypatch):
    """What a read-only folder gives (simulated where the tests run as root): PermissionError naming both."""
    import errno
    path, before = _saved_previous(tmp_path)

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(PermissionError) as error:
        mlp().save(str(path))
    assert "m.h5" in str(error.value) and str(tmp_path) in str(error.value)
    assert path.read_bytes() == before


def test_fsync_failure_keeps_previous_file(tmp_path, monkeypatch):
    import errno
    path, before = _saved_previous(tmp_path)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left on device") as error:
        mlp().save(str(path))
    assert "m.h5" in str(error.value)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.h5"]


def test_fsync_can_be_switched_off(tmp_path, monkeypatch):
    def never(fd):
        raise AssertionError("fsync called")
    monkeypatch.setattr(os, "fsync", never)
    monkeypatch.setenv("FASTFIT_FSYNC", "0")
    with io_utils.atomic_write(tmp_path / "x.txt") as f:
        f.write("ok")
    assert (tmp_path / "x.txt").read_text() == "ok"


def _leftovers_gone(folder, keep, deadline_s=10.0):
    """Wait (bounded) for the background remover; True when only `keep` is left in `folder`."""
    import time
    deadline = time.monotonic() + deadline_s
    while sorted(os.listdir(folder)) != keep and time.monotonic() < deadline:
        time.sleep(0.01)
    return sorted(os.listdir(folder)) == keep


def test_a_large_previous_file_is_removed_in_the_background(tmp_path):
    path = tmp_path / "big.bin"
    old = os.urandom(io_utils._RECLAIM_BYTES)
    path.write_bytes(old)
    with open(path, "rb") as reader:  # an open reader keeps reading the old content
        with io_utils.atomic_write(path, "wb") as f:
            f.write(b"new")
        assert path.read_bytes() == b"new"
        assert reader.read() == old
    assert _leftovers_gone(tmp_path, ["big.bin"])


def test_without_hard_links_the_previous_file_is_replaced_directly(tmp_path, monkeypatch):
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(io_utils._RECLAIM_BYTES))

    def no_links(src, dst):
        raise OSError(1, "Operation not permitted")
    monkeypatch.setattr(os, "link", no_links)
    with io_utils.atomic_write(path, "wb") as f:
        f.write(b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["big.bin"]


def test_failed_rename_removes_the_extra_link(tmp_path, monkeypatch):
    import errno
    path = tmp_path / "big.bin"
    before = bytes(io_utils._RECLAIM_BYTES)
    path.write_bytes(before)

    def refuse(src, dst):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="big.bin"):
        with io_utils.atomic_write(path, "wb") as f:
            f.write(b"new")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["big.bin"]
