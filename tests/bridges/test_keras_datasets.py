"""boston_housing and fashion_mnist read Keras's local files (fake small ones here), never downloading."""
import gzip

import numpy as np
import pytest

from fastfit.datasets import boston_housing, fashion_mnist


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    (home / "datasets").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return home


def _boston_file(path, n=30):
    x = np.arange(n * 13, dtype=np.float64).reshape(n, 13)
    y = np.arange(n, dtype=np.float64) + 0.5
    np.savez(path, x=x, y=y)
    return x, y


def test_boston_split_is_keras_shuffle_of_the_file(keras_home):
    x, y = _boston_file(keras_home / "datasets" / "boston_housing.npz")
    (x_train, y_train), (x_test, y_test) = boston_housing.load_data()
    assert x_train.shape == (24, 13) and x_test.shape == (6, 13) and y_train.shape == (24,)
    np.random.seed(113)  # Keras 2.2's spelling of the same shuffle
    order = np.arange(30)
    np.random.shuffle(order)
    np.testing.assert_array_equal(np.concatenate([x_train, x_test]), x[order])
    np.testing.assert_array_equal(np.concatenate([y_train, y_test]), y[order])
    (x_train, _), (x_test, _) = boston_housing.load_data(test_split=0.5, seed=1)
    assert len(x_train) == len(x_test) == 15


def test_boston_reads_a_path_and_the_home_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    _boston_file(tmp_path / "mine.npz", n=10)
    assert boston_housing.load_data("mine.npz")[0][0].shape == (8, 13)
    (tmp_path / ".keras" / "datasets").mkdir(parents=True)
    _boston_file(tmp_path / ".keras" / "datasets" / "boston_housing.npz", n=20)
    assert boston_housing.load_data()[0][0].shape == (16, 13)


def test_boston_errors(keras_home):
    with pytest.raises(FileNotFoundError, match="does not download data.*boston_housing.npz"):
        boston_housing.load_data()
    with pytest.raises(ValueError, match="test_split"):
        boston_housing.load_data(test_split=1.0)
    np.savez(keras_home / "datasets" / "boston_housing.npz", features=np.zeros(3))
    with pytest.raises(ValueError, match="lacks the arrays 'x' and 'y'"):
        boston_housing.load_data()
    np.savez(keras_home / "datasets" / "boston_housing.npz", x=np.zeros((3, 13)), y=np.zeros(4))
    with pytest.raises(ValueError, match="same number of rows"):
        boston_housing.load_data()


def _idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


def _fashion_files(folder, n_train=6, n_test=4):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28)), "y_train": rng.integers(0, 10, n_train),
              "x_test": rng.integers(0, 256, (n_test, 28, 28)), "y_test": rng.integers(0, 10, n_test)}
    _idx(folder / "train-labels-idx1-ubyte.gz", arrays["y_train"], 2049)
    _idx(folder / "train-images-idx3-ubyte.gz", arrays["x_train"], 2051)
    _idx(folder / "t10k-labels-idx1-ubyte.gz", arrays["y_test"], 2049)
    _idx(folder / "t10k-images-idx3-ubyte.gz", arrays["x_test"], 2051)
    return arrays


def test_fashion_mnist_reads_keras_cache_folder(keras_home):
    arrays = _fashion_files(keras_home / "datasets" / "fashion-mnist")
    (x_train, _), (x_test, y_test) = fashion_mnist.load_data()
    assert x_train.dtype == np.uint8 and x_train.shape == (6, 28, 28) and x_test.shape == (4, 28, 28)
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_fashion_mnist_errors(keras_home):
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte.gz.*fashion-mnist"):
        fashion_mnist.load_data()
    folder = keras_home / "datasets" / "fashion-mnist"
    _fashion_files(folder)
    _idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(5), 2049)
    with pytest.raises(ValueError, match="4 images and 5 labels"):
        fashion_mnist.load_data()
    _idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros((4, 28, 28)), 2051)
    with pytest.raises(ValueError, match="not an IDX file of 1-D"):
        fashion_mnist.load_data()
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as file:
        file.write((2049).to_bytes(4, "big") + (9).to_bytes(4, "big") + b"\0\0")
    with pytest.raises(ValueError, match="truncated"):
        fashion_mnist.load_data()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="cannot read"):
        fashion_mnist.load_data()


def test_mnist_honours_keras_home(keras_home):
    from fastfit.datasets import mnist
    np.savez(keras_home / "datasets" / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8),
             y_train=np.zeros(2, np.uint8), x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.zeros(1, np.uint8))
    assert mnist.load_data()[1][0].shape == (1, 28, 28)
