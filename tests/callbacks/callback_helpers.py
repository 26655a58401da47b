"""Helpers for the callback tests: a duck-typed model and a driver that plays the fit loop's epoch calls."""
import numpy as np

import fastfit
from fastfit.callbacks import CallbackList


class FakeOptimizer:
    def __init__(self, lr=1.0):
        self.lr = lr


class FakeModel:
    """What the callbacks may rely on: stop_training, get/set_weights (copies), save/save_weights, optimizer."""

    def __init__(self, lr=1.0):
        self.stop_training = False
        self.optimizer = FakeOptimizer(lr)
        self.weights = [np.zeros(3)]
        self.saved = []
        self.layers = []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w, copy=True) for w in weights]

    def save(self, path, overwrite=True):
        self.saved.append(("model", path))
        with open(path, "w") as handle:
            handle.write("model")

    def save_weights(self, path, overwrite=True):
        self.saved.append(("weights", path))
        with open(path, "w") as handle:
            handle.write("weights")


def run_epochs(callbacks, model, values, key="val_loss", extra=None, params=None):
    """Drive `callbacks` through len(values) epochs; epoch i has logs {key: values[i]} and weights [i, i, i].

    Returns the number of epochs that ran before `model.stop_training` ended training.
    """
    cbks = CallbackList(callbacks)
    cbks.set_validation_data(None)
    cbks.set_model(model)
    cbks.set_params(params or {"epochs": len(values), "verbose": 0, "metrics": ["loss", key]})
    model.stop_training = False
    cbks.on_train_begin({})
    ran = 0
    for epoch, value in enumerate(values):
        cbks.on_epoch_begin(epoch, {})
        model.weights = [np.full(3, float(epoch))]
        logs = {"loss": 1.0} if key != "loss" else {}
        if value is not None:
            logs[key] = value
        logs.update(extra or {})
        cbks.on_epoch_end(epoch, logs)
        ran += 1
        if model.stop_training:
            break
    cbks.on_train_end({})
    return ran


def tiny_classifier(engine=None, metrics=("acc",), optimizer="sgd", lr=None):
    """A seeded 4 -> 3 softmax classifier and 40 samples of data."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, size=40)
    centres = rng.normal(0, 2, size=(3, 4))
    x = (centres[labels] + rng.normal(0, 0.5, size=(40, 4))).astype("float32")
    y = fastfit.utils.to_categorical(labels, 3)
    model = fastfit.Sequential()
    model.add(fastfit.layers.Dense(3, input_dim=4, activation="softmax"))
    if lr is not None:
        optimizer = fastfit.optimizers.SGD(lr=lr)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=list(metrics), engine=engine)
    return model, x, y
