"""Small data that ships with fastfit, and a loader for Keras-format `.npz` files.

* `load_digits()`: the UCI optical handwritten digits (8x8 images, 1797 samples, 10 classes, CC BY 4.0),
  bundled in `fastfit/datasets/data/` with its licence and citation.
* `load_npz(path)`: a Keras-format `mnist.npz` (or any `.npz` with `x_train`, `y_train`, `x_test`, `y_test`).
* `mnist.load_data(path='mnist.npz')`: Keras's loader, reading the file from `path` or Keras's cache folder.
"""
from fastfit.datasets import mnist
from fastfit.datasets.digits import load_digits
from fastfit.datasets.npz import load_npz

__all__ = ["load_digits", "load_npz", "mnist"]
