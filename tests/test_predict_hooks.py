"""predict's batch hooks: the array of a single-output model, the list of outputs of a multi-output model."""
import numpy as np

from fastfit.callbacks import Callback
from fastfit.layers import Dense, Input
from fastfit.models import Model


class Record(Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_predict_batch_end(self, batch, logs=None):
        self.batches.append((batch, logs["size"], logs["outputs"]))


def test_multi_output_predict_hooks_get_every_output(core):
    inputs = Input(shape=(3,))
    hidden = Dense(4, activation="relu")(inputs)
    model = Model(inputs, [hidden, Dense(2)(hidden)])
    x = np.random.default_rng(0).normal(size=(10, 3)).astype("float32")
    record = Record()
    h, o = model.predict(x, batch_size=4, callbacks=[record])
    assert [(b, s) for b, s, _ in record.batches] == [(0, 4), (1, 4), (2, 2)]
    last = record.batches[-1][2]
    assert isinstance(last, list) and len(last) == 2
    np.testing.assert_array_equal(last[0], h[8:])
    np.testing.assert_array_equal(last[1], o[8:])


def test_single_output_predict_hooks_get_the_array(core):
    inputs = Input(shape=(3,))
    model = Model(inputs, Dense(2)(inputs))
    x = np.ones((5, 3), dtype="float32")
    record = Record()
    out = model.predict(x, batch_size=2, callbacks=[record])
    np.testing.assert_array_equal(record.batches[1][2], out[2:4])
