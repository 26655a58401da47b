"""Small data that ships with fastfit, and a loader for Keras-format `.npz` files.

* `load_digits()`: the UCI optical handwritten digits (8x8 images, 1797 samples, 10 classes, CC BY 4.0),
  bundled in `fastfit/datasets/data/` with its licence and citation.
* `load_npz(path)`: a Keras-format `mnist.npz` (or any `.npz` with `x_train`, `y_train`, `x_test`, `y_test`).
* `mnist.load_data(path='mnist.npz')`, `boston_housing.load_data(path='boston_housing.npz', test_split=0.2,
  seed=113)`, `fashion_mnist.load_data()`: Keras's loaders, reading the files from `path` or Keras's cache folder
  (`$KERAS_HOME/datasets/`, then `~/.keras/datasets/`); fastfit never downloads.
"""
from fastfit.datasets import boston_housing, fashion_mnist, mnist
from fastfit.datasets.digits import load_digits
from fastfit.datasets.npz import load_npz

__all__ = ["boston_housing", "fashion_mnist", "load_digits", "load_npz", "mnist"]
