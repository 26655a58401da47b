"""Data and engine selection for the seed examples.

The seed code calls `compile` without an `engine` argument, so the engine comes from `FASTFIT_ENGINE`, set here
from the shared `core` fixture: every seed example runs on both cores.
"""
import numpy as np
import pytest

import fastfit


@pytest.fixture(autouse=True)
def _core_from_environment(core, monkeypatch):
    monkeypatch.setenv("FASTFIT_ENGINE", core)


def _mnist_like(rng, prototypes, n, labels=None):
    """`n` flattened 28x28 'images' in [0, 1]: a noisy class prototype each, with one-hot labels."""
    if labels is None:
        labels = rng.integers(0, 10, n)
    x = np.clip(prototypes[labels] + rng.normal(0, 0.25, (n, 784)), 0, 1).astype("float32")
    return x, fastfit.utils.to_categorical(labels, 10)


@pytest.fixture
def mnist_like():
    """(x_train, y_train, x_test, y_test): 256 training and 64 test samples shaped like flattened MNIST.

    256 samples at the seeds' batch_size=128 make exactly 2 batches per epoch.
    """
    rng = np.random.default_rng(42)
    prototypes = (rng.random((10, 784)) < 0.2).astype("float64")
    return _mnist_like(rng, prototypes, 256) + _mnist_like(rng, prototypes, 64)


@pytest.fixture
def mnist_like_overfitting():
    """Like `mnist_like`, but the test labels are random, so the validation loss soon stops improving."""
    rng = np.random.default_rng(7)
    prototypes = (rng.random((10, 784)) < 0.2).astype("float64")
    x_test, _ = _mnist_like(rng, prototypes, 64)
    return _mnist_like(rng, prototypes, 256) + (x_test, fastfit.utils.to_categorical(rng.integers(0, 10, 64), 10))


@pytest.fixture
def binary_data():
    """(x, y, x_val, y_val): 20 features, one 0/1 target column (the DLwP binary classification setting)."""
    rng = np.random.default_rng(11)
    w = rng.normal(size=(20, 1))

    def draw(n):
        x = rng.normal(size=(n, 20)).astype("float32")
        return x, (x @ w > 0).astype("float32")

    return draw(96) + draw(32)
