"""Interop with Keras 3 (run when `keras` and `jax` are installed): files go both ways and predict the same.

Keras runs in a subprocess with KERAS_BACKEND=jax (the backend must be chosen before keras is imported, and
Keras' numpy backend imports jax too).
"""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastfit.models import load_model

from saving_helpers import CLASSES, FEATURES, data, mlp

pytestmark = pytest.mark.skipif(importlib.util.find_spec("keras") is None or importlib.util.find_spec("jax") is None,
                                reason="needs keras (3) and jax")

KERAS_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    fastfit_file, x_file, folder = sys.argv[1:4]
    x = np.load(x_file)
    report = {"version": keras.__version__}
    model = keras.models.load_model(fastfit_file)
    np.save(folder + "/keras_on_fastfit.npy", model.predict(x, verbose=0))
    report["optimizer"] = type(model.optimizer).__name__
    report["learning_rate"] = float(model.optimizer.learning_rate.numpy())
    rebuilt = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(8, activation="relu"),
                                keras.layers.Dropout(0.25), keras.layers.Dense(3), keras.layers.Activation("softmax")])
    rebuilt.load_weights(fastfit_file)
    np.save(folder + "/keras_load_weights.npy", rebuilt.predict(x, verbose=0))

    keras.utils.set_random_seed(3)
    own = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(7, activation="tanh"),
                            keras.layers.Dropout(0.3), keras.layers.Dense(3), keras.layers.Activation("softmax")])
    own.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy"])
    y = np.eye(3, dtype="float32")[np.arange(len(x)) % 3]
    own.fit(x, y, epochs=2, batch_size=16, verbose=0)
    own.save(folder + "/keras.h5")
    np.save(folder + "/keras_own.npy", own.predict(x, verbose=0))
    print(json.dumps(report))
""")


@pytest.fixture(scope="module")
def exchanged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interop")
    model = mlp("python")
    x, y = data()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    model.save(str(folder / "fastfit.h5"))
    np.save(folder / "x.npy", x)
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", KERAS_SCRIPT, str(folder / "fastfit.h5"), str(folder / "x.npy"),
                             str(folder)], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return folder, model, x, report


def test_keras3_loads_a_fastfit_model_and_predicts_the_same(exchanged):
    folder, model, x, report = exchanged
    np.testing.assert_allclose(np.load(folder / "keras_on_fastfit.npy"), model.predict(x), rtol=1e-5, atol=1e-6)
    assert report["optimizer"] == "Adam" and report["learning_rate"] == pytest.approx(0.001)


def test_keras3_load_weights_from_a_fastfit_file(exchanged):
    folder, model, x, _ = exchanged
    np.testing.assert_allclose(np.load(folder / "keras_load_weights.npy"), model.predict(x), rtol=1e-5, atol=1e-6)


def test_fastfit_loads_a_keras3_model_and_predicts_the_same(exchanged, monkeypatch):
    folder, _, x, _ = exchanged
    monkeypatch.setenv("FASTFIT_ENGINE", "python")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras 3's Adam state (iteration, then m and v per variable) maps over
        loaded = load_model(str(folder / "keras.h5"))
    assert loaded.optimizer.iterations == 6  # 2 epochs of 3 batches in Keras
    assert [type(l).__name__ for l in loaded.layers] == ["Dense", "Dropout", "Dense", "Activation"]
    np.testing.assert_allclose(loaded.predict(x), np.load(folder / "keras_own.npy"), rtol=1e-5, atol=1e-6)
    assert type(loaded.optimizer).__name__ == "Adam" and loaded.optimizer.lr == pytest.approx(0.01)
    assert loaded.metrics_names == ["loss", "accuracy"]
    x_train, y_train = data()
    loaded.fit(x_train, y_train, epochs=1, verbose=0)  # trains on at once
    assert loaded.output_shape == (None, CLASSES) and loaded.input_shape == (None, FEATURES)


LOSS_OBJECT_SCRIPT = textwrap.dedent("""
    import json, sys
    import keras
    model = keras.models.load_model(sys.argv[1])
    loss = model.loss
    print(json.dumps({"class_name": type(loss).__name__, "from_logits": loss.get_config().get("from_logits")}))
""")


def test_keras3_loads_a_model_compiled_with_a_from_logits_loss_object(tmp_path):
    from fastfit import losses
    from fastfit.models import Sequential
    from fastfit.layers import Dense
    model = Sequential([Dense(4, activation="relu", input_shape=(FEATURES,)), Dense(CLASSES)])
    model.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True), engine="python")
    path = str(tmp_path / "logits.h5")
    model.save(path)
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", LOSS_OBJECT_SCRIPT, path], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"class_name": "SparseCategoricalCrossentropy", "from_logits": True}
