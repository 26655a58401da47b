"""Small seeded models and data shared by the saving tests."""
import os

import numpy as np

import fastfit
from fastfit.layers import Activation, Dense, Dropout
from fastfit.models import Sequential

FEATURES, CLASSES = 6, 3
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # for subprocesses


def data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, size=n)
    centres = rng.normal(0, 2, size=(CLASSES, FEATURES))
    x = (centres[labels] + rng.normal(0, 0.7, size=(n, FEATURES))).astype("float32")
    return x, fastfit.utils.to_categorical(labels, CLASSES)


def mlp(engine=None, optimizer="adam", dropout=0.25, seed=7, compile=True):
    """Dense-Dropout-Dense-Activation(softmax), seeded so two calls build identical models."""
    fastfit.utils.set_random_seed(seed)
    layers = [Dense(8, input_dim=FEATURES, activation="relu")]
    if dropout:
        layers.append(Dropout(dropout))
    layers += [Dense(CLASSES), Activation("softmax")]
    model = Sequential(layers)
    if compile:
        model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["acc"], engine=engine)
    return model


def assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)
