"""Golden files committed in tests/saving/data: a Keras 3.15.1 `.h5` and a fastfit 0.1 file.

They pin both directions without Keras installed: fastfit must keep reading its own old files and Keras 3's
legacy writer's files, with the same predictions. Made by (Keras side, KERAS_BACKEND=jax): keras.utils.
set_random_seed(11); Sequential([Input((6,)), Dense(7, 'tanh'), Dropout(0.3), Dense(3), Activation('softmax')]),
Adam(0.01), categorical_crossentropy, metrics ['accuracy'], 2 epochs of batch 8 on 16 seeded rows; fastfit side
the same network with fastfit 0.1 and Adam().
"""
import os
import warnings

import h5py
import numpy as np
import pytest

from fastfit.models import load_model

DATA = os.path.join(os.path.dirname(__file__), "data")


def _expected(name):
    return np.load(os.path.join(DATA, name))


def test_keras3_golden_file_loads_and_predicts_the_same():
    expected = _expected("keras3_sequential_expected.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_model(os.path.join(DATA, "keras3_sequential.h5"))
    assert [type(l).__name__ for l in model.layers] == ["Dense", "Dropout", "Dense", "Activation"]
    np.testing.assert_allclose(model.predict(expected["x"]), expected["predictions"], rtol=1e-5, atol=1e-6)
    assert type(model.optimizer).__name__ == "Adam" and model.optimizer.lr == pytest.approx(0.01)
    assert model.optimizer.iterations == 4
    model.fit(expected["x"], expected["predictions"], epochs=1, verbose=0)


def test_keras3_golden_file_attribute_types():
    """What Keras 3's legacy writer stores (the reader must accept all of it)."""
    with h5py.File(os.path.join(DATA, "keras3_sequential.h5"), "r") as f:
        assert isinstance(f.attrs["keras_version"], str) and isinstance(f.attrs["model_config"], str)
        assert f["model_weights"].attrs["layer_names"].dtype == object
        assert f["model_weights/dropout"].attrs["weight_names"].dtype == np.float64  # empty float array
        assert list(f["model_weights/dense"].attrs["weight_names"]) == ["sequential/dense/kernel",
                                                                        "sequential/dense/bias"]


def test_fastfit_0_1_golden_file_still_loads():
    expected = _expected("fastfit_0.1_sequential_expected.npz")
    path = os.path.join(DATA, "fastfit_0.1_sequential.h5")
    model = load_model(path)
    np.testing.assert_allclose(model.predict(expected["x"]), expected["predictions"], rtol=1e-6, atol=1e-7)
    assert model.optimizer.iterations == int(expected["iterations"])
    assert model._seed == 4605025475050782003 and model.layers[1]._op_seed == 1185850812994184742
    with h5py.File(path, "r") as f:
        assert f.attrs["fastfit_version"] == b"0.1.0" and f.userblock_size == 512
        assert isinstance(f.attrs["keras_version"], np.bytes_)
        assert f["model_weights"].attrs["layer_names"].dtype.kind == "S"
