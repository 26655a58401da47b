"""fastfit.datasets: the bundled digits and the Keras-format npz loader."""
import hashlib

import numpy as np
import pytest

from fastfit.datasets import digits, load_digits, load_npz

DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"


def test_bundled_file_is_the_published_one():
    with open(digits.DATA_FILE, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == DIGITS_SHA256


def test_load_digits_shapes_dtypes_and_range():
    (x_train, y_train), (x_test, y_test) = load_digits()
    assert x_train.shape == (1437, 64) and x_test.shape == (360, 64)
    assert y_train.shape == (1437,) and y_test.shape == (360,)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    # pixels are counts 0..16 divided by 16
    assert np.array_equal(np.unique(x_test * 16), np.arange(17))
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))


def test_split_is_a_partition_and_stratified():
    (x_train, y_train), (x_test, y_test) = load_digits()
    table = digits._read_table()
    rows = {row.tobytes() + bytes([label]) for row, label in zip(table[:, :64], table[:, 64])}
    got = [(np.rint(x * 16).astype(np.uint8).tobytes() + bytes([int(label)]))
           for x, label in zip(np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test]))]
    assert len(got) == 1797 and set(got) == rows
    test_counts = np.bincount(y_test, minlength=10)
    all_counts = np.bincount(table[:, 64], minlength=10)
    assert np.all(np.abs(test_counts - all_counts * 360 / 1797) < 1)


def test_split_is_fixed_across_calls():
    first = load_digits()
    second = load_digits()
    for a, b in zip(first, second):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # the first labels of each part pin the split (RandomState's stream is frozen)
    assert first[0][1][:10].tolist() == [0, 5, 9, 7, 4, 3, 8, 6, 6, 5]
    assert first[1][1][:10].tolist() == [6, 5, 4, 5, 0, 1, 7, 3, 9, 7]


def test_load_digits_images():
    (flat, _), _ = load_digits()
    (images, _), (test_images, _) = load_digits(flatten=False)
    assert images.shape == (1437, 8, 8) and test_images.shape == (360, 8, 8)
    assert np.array_equal(images.reshape(1437, 64), flat)


def test_load_digits_rejects_non_bool():
    with pytest.raises(TypeError, match="flatten"):
        load_digits(flatten="yes")


def test_stratified_split_small():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    train, test = digits.stratified_split(labels, 5, seed=3)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(10))
    assert len(test) == 5
    assert np.bincount(labels[test], minlength=3).tolist() == [3, 2, 0]


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_load_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (12, 4, 4), dtype=np.uint8),
              "y_train": rng.integers(0, 10, 12, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (5, 4, 4), dtype=np.uint8),
              "y_test": rng.integers(0, 10, 5, dtype=np.uint8)}
    path = _write_npz(tmp_path / "mnist.npz", **arrays)
    (x_train, y_train), (x_test, y_test) = load_npz(path)
    assert np.array_equal(x_train, arrays["x_train"]) and x_train.dtype == np.uint8
    assert np.array_equal(y_train, arrays["y_train"])
    assert np.array_equal(x_test, arrays["x_test"]) and np.array_equal(y_test, arrays["y_test"])
    # a str path works too
    assert load_npz(str(path))[1][0].shape == (5, 4, 4)


def test_load_npz_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        load_npz(tmp_path / "nothere.npz")


def test_load_npz_missing_keys_names_found_keys(tmp_path):
    path = _write_npz(tmp_path / "partial.npz", x_train=np.zeros((2, 3)), y_train=np.zeros(2),
                      images=np.zeros((1, 3)))
    with pytest.raises(ValueError) as info:
        load_npz(path)
    message = str(info.value)
    assert "x_test, y_test" in message and "found images, x_train, y_train" in message


def test_load_npz_not_an_archive(tmp_path):
    path = tmp_path / "plain.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="not an .npz archive"):
        load_npz(path)


def test_load_npz_refuses_pickle(tmp_path):
    objects = np.empty(2, dtype=object)
    objects[:] = [{"a": 1}, None]
    path = _write_npz(tmp_path / "pickled.npz", x_train=objects, y_train=np.zeros(2),
                      x_test=np.zeros(1), y_test=np.zeros(1))
    with pytest.raises(ValueError, match="pickle"):
        load_npz(path)


def test_load_npz_length_mismatch(tmp_path):
    path = _write_npz(tmp_path / "bad.npz", x_train=np.zeros((3, 2)), y_train=np.zeros(2),
                      x_test=np.zeros((1, 2)), y_test=np.zeros(1))
    with pytest.raises(ValueError, match=r"x_train and y_train .* \(3, 2\) and \(2,\)"):
        load_npz(path)


def test_mnist_load_data_reads_local_file_then_keras_cache(tmp_path, monkeypatch):
    from fastfit.datasets import mnist

    arrays = dict(x_train=np.zeros((3, 28, 28), np.uint8), y_train=np.arange(3, dtype=np.uint8),
                  x_test=np.ones((2, 28, 28), np.uint8), y_test=np.arange(2, dtype=np.uint8))
    local = _write_npz(tmp_path / "local.npz", **arrays)
    assert mnist.load_data(local)[0][1].tolist() == [0, 1, 2]
    home = tmp_path / "home"
    (home / ".keras" / "datasets").mkdir(parents=True)
    _write_npz(home / ".keras" / "datasets" / "mnist.npz", **arrays)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    (x_train, _), (x_test, _) = mnist.load_data()
    assert x_train.shape == (3, 28, 28) and x_test.shape == (2, 28, 28)


def test_mnist_load_data_missing_says_where_to_get_it(tmp_path, monkeypatch):
    from fastfit.datasets import mnist

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not download data.*mnist.npz"):
        mnist.load_data()
