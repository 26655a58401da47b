"""Shared fixtures: small seeded data sets and the cores to parametrize over."""
import numpy as np
import pytest

import fastfit
from fastfit.core import compiled_core


def available_cores():
    return ["python", "cython"] if compiled_core() is not None else ["python"]


@pytest.fixture(params=available_cores())
def core(request):
    """The name of a compute core, 'python' or 'cython' (what `compile(engine=...)` takes)."""
    return request.param


@pytest.fixture(autouse=True)
def _seeded():
    fastfit.utils.set_random_seed(1234)
    fastfit.backend.clear_session()
    yield


@pytest.fixture
def classification_data():
    """60 samples, 8 features, 3 well-separated classes (one-hot targets)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=60)
    centres = rng.normal(0, 3, size=(3, 8))
    x = (centres[labels] + rng.normal(0, 0.5, size=(60, 8))).astype("float32")
    y = fastfit.utils.to_categorical(labels, 3)
    return x, y, labels
