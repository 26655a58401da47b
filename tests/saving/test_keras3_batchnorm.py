"""A model with BatchNormalization, PReLU, a weight penalty and a constraint goes to Keras 3 and back through
HDF5 files and predicts the same (KERAS_BACKEND=jax, in a subprocess)."""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from saving_helpers import CLASSES, FEATURES, data

import fastfit
from fastfit import constraints, regularizers
from fastfit.layers import Activation, BatchNormalization, Dense, PReLU
from fastfit.models import Sequential, load_model

pytestmark = pytest.mark.skipif(importlib.util.find_spec("keras") is None or importlib.util.find_spec("jax") is None,
                                reason="needs keras (3) and jax")

KERAS_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    fastfit_file, x_file, folder = sys.argv[1:4]
    x = np.load(x_file)
    model = keras.models.load_model(fastfit_file)
    np.save(folder + "/keras_on_fastfit.npy", model.predict(x, verbose=0))
    report = {"layers": [type(l).__name__ for l in model.layers],
              "bn_weights": [w.path.split("/")[-1] for w in model.layers[1].weights]}
    keras.utils.set_random_seed(3)
    own = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(7), keras.layers.BatchNormalization(),
                            keras.layers.Activation("relu"), keras.layers.Dense(3, activation="softmax")])
    own.compile(optimizer="adam", loss="categorical_crossentropy")
    y = np.eye(3, dtype="float32")[np.arange(len(x)) % 3]
    own.fit(x, y, epochs=3, batch_size=16, verbose=0)
    own.save(folder + "/keras.h5")
    np.save(folder + "/keras_own.npy", own.predict(x, verbose=0))
    print(json.dumps(report))
""")


@pytest.fixture(scope="module")
def exchanged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interop_bn")
    fastfit.utils.set_random_seed(5)
    model = Sequential([Dense(8, input_dim=FEATURES, kernel_regularizer=regularizers.l2(1e-3),
                              kernel_constraint=constraints.max_norm(2.0)),
                        BatchNormalization(momentum=0.8), PReLU(), Dense(CLASSES), Activation("softmax")])
    model.compile("adam", "categorical_crossentropy")
    x, y = data()
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    model.save(str(folder / "fastfit.h5"))
    np.save(folder / "x.npy", x)
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", KERAS_SCRIPT, str(folder / "fastfit.h5"), str(folder / "x.npy"),
                             str(folder)], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, model, x, json.loads(result.stdout.strip().splitlines()[-1])


def test_keras3_loads_batch_normalization_and_predicts_the_same(exchanged):
    folder, model, x, report = exchanged
    assert report["layers"] == ["Dense", "BatchNormalization", "PReLU", "Dense", "Activation"]
    assert report["bn_weights"] == ["gamma", "beta", "moving_mean", "moving_variance"]
    moved = model.layers[1].moving_mean
    assert np.abs(moved).max() > 0  # the moving statistics were trained, so the check means something
    np.testing.assert_allclose(np.load(folder / "keras_on_fastfit.npy"), model.predict(x), rtol=1e-5, atol=1e-6)


def test_fastfit_loads_keras3_batch_normalization_and_predicts_the_same(exchanged, core):
    folder, _, x, _ = exchanged
    loaded = load_model(str(folder / "keras.h5"))
    loaded.compile(loaded.optimizer, loaded.loss, engine=core)
    assert [type(l).__name__ for l in loaded.layers] == ["Dense", "BatchNormalization", "Activation", "Dense"]
    np.testing.assert_allclose(loaded.predict(x), np.load(folder / "keras_own.npy"), rtol=1e-5, atol=1e-6)
