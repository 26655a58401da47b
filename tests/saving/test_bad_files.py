"""Bad files: missing, not HDF5, truncated, corrupted, zip archives, weights-only; none may crash or hang."""
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from fastfit.models import load_model

from saving_helpers import REPO, data, mlp


@pytest.fixture
def saved(tmp_path):
    model = mlp()
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "good.h5")
    model.save(path)
    return model, path


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.h5"):
        load_model(str(tmp_path / "absent.h5"))
    with pytest.raises(FileNotFoundError, match="absent.h5"):
        mlp().load_weights(str(tmp_path / "absent.h5"))


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(IsADirectoryError):
        load_model(str(tmp_path))


def test_text_file(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not HDF5 at all")
    with pytest.raises(ValueError, match="notes.h5.*not an HDF5 file"):
        load_model(str(path))


def test_keras3_zip_archive_is_explained(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ValueError, match="zip archive"):
        load_model(str(path))


def test_weights_only_file_is_not_a_model(tmp_path):
    path = str(tmp_path / "w.h5")
    mlp().save_weights(path)
    with pytest.raises(ValueError, match="no model found"):
        load_model(path)


def test_hdf5_file_without_weights(tmp_path):
    path = str(tmp_path / "empty.h5")
    with h5py.File(path, "w") as f:
        f.attrs["something"] = 1
    with pytest.raises(ValueError, match="no weights found"):
        mlp().load_weights(path)
    with pytest.raises(ValueError, match="no model found"):
        load_model(path)


def _edited(path):
    """Drop the fastfit checksum after editing a file with h5py, so the reader's deeper checks run."""
    with open(path, "r+b") as f:
        f.write(bytes(512))


def test_edited_file_fails_its_checksum(saved):
    model, path = saved
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = b"{}"
    with pytest.raises(ValueError, match="checksum"):
        load_model(path)
    _edited(path)
    with pytest.raises(ValueError):  # now HDF5 parses it: an empty config is no model
        load_model(path)


def test_non_numeric_weight_is_refused(saved, tmp_path):
    model, path = saved
    name = model.layers[0].name
    with h5py.File(path, "r+") as f:
        del f[f"model_weights/{name}/{name}/kernel:0"]
        f[f"model_weights/{name}/{name}/kernel:0"] = np.array([b"x"] * 3, dtype=object).astype("S1")
    _edited(path)
    with pytest.raises(ValueError, match="not a numeric array"):
        load_model(path)


def test_invalid_json_config(saved):
    _, path = saved
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = b"{not json"
    _edited(path)
    with pytest.raises(ValueError, match="model_config.*not valid JSON"):
        load_model(path)


def test_truncated_files_raise_clear_errors(saved, tmp_path):
    _, path = saved
    content = open(path, "rb").read()
    cut_path = tmp_path / "cut.h5"
    for length in sorted({0, 7, 100, 512, 2048, len(content) // 3, len(content) // 2, len(content) - 1,
                          *range(0, len(content), max(1, len(content) // 25))}):
        cut_path.write_bytes(content[:length])
        with pytest.raises(ValueError, match="cut.h5"):
            load_model(str(cut_path))


CORRUPT_SCRIPT = textwrap.dedent("""
    import os, sys, warnings
    import numpy as np
    from fastfit.models import load_model
    path, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    good = open(path, "rb").read()
    rng = np.random.default_rng(seed)
    outcomes = {}
    for i in range(count):
        data = bytearray(good)
        for position in rng.integers(0, len(data), size=4):
            data[position] ^= int(rng.integers(1, 256))
        bad = path + ".bad"
        with open(bad, "wb") as f:
            f.write(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                load_model(bad)
            outcome = "loaded"
        except (ValueError, OSError) as error:
            outcome = type(error).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print(outcomes)
""")


def test_random_corruption_never_crashes(saved):
    """Flip bytes at random: each load either works or raises ValueError/OSError; the process never dies.

    (The checksum catches these before HDF5 sees them; without it, HDF5 1.14 segfaulted on about 1 in 1000.)
    """
    _, path = saved
    env = dict(os.environ, PYTHONFAULTHANDLER="1", PYTHONPATH=REPO)
    result = subprocess.run([sys.executable, "-c", CORRUPT_SCRIPT, path, "3", "60"], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "{" in result.stdout


def test_huge_declared_weight_is_refused_before_reading(tmp_path):
    """A file may declare a 40 GB kernel; the shape check runs before any data is read."""
    model = mlp(dropout=0)
    path = str(tmp_path / "huge.h5")
    model.save_weights(path)
    name = model.layers[0].name
    with h5py.File(path, "r+") as f:
        del f[f"{name}/{name}/kernel:0"]
        f.create_dataset(f"{name}/{name}/kernel:0", shape=(100_000, 100_000), dtype="float32")  # not allocated
    _edited(path)
    with pytest.raises(ValueError, match=r"\(100000, 100000\)"):
        mlp(dropout=0).load_weights(path)


def test_deeply_nested_json_config(saved):
    _, path = saved
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = ("[" * 100_000 + "]" * 100_000).encode()
    _edited(path)
    with pytest.raises(ValueError, match="model_config"):
        load_model(path)
