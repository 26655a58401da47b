"""Seed `keras-0x-callbacks.md` (Keras 0.x docs): every code example, run with only the imports changed.

Changes to the seed code: the `keras` imports become `fastfit` imports, `print history.losses` is written as
Python 3, the hard-coded '/tmp/weights.hdf5' points into pytest's tmp_path, and the data (which the seed does
not define) are 256 training and 64 test samples shaped like flattened MNIST.
"""
import math
import re

import numpy as np
import pytest

import fastfit as keras
from fastfit.callbacks import EarlyStopping, ModelCheckpoint
from fastfit.layers.core import Activation, Dense
from fastfit.models import Sequential, load_model

# the seed's Keras 0.x spellings warn on purpose (checked in test_record_the_loss_history)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# -- "Create a callback" (first version, as printed) ---------------------------------------------------------

class LossHistoryAsPrinted(keras.callbacks.Callback):
    def on_train_begin(self):
        self.losses = []

    def on_batch_end(self, batch, logs={}):
        self.losses.append(logs.get('loss'))


def test_first_loss_history_lacks_logs_parameter_and_fails_clearly(mnist_like):
    """The first printed LossHistory omits `logs` from on_train_begin; every Keras raised TypeError (spec §4.12)."""
    X_train, Y_train, _, _ = mnist_like
    model = Sequential([Dense(10, input_dim=784), Activation('softmax')])
    model.compile(loss='categorical_crossentropy', optimizer='rmsprop')
    with pytest.raises(TypeError, match="on_train_begin"):
        model.fit(X_train, Y_train, batch_size=128, epochs=1, verbose=0, callbacks=[LossHistoryAsPrinted()])


# -- "Example to record the loss history" -----------------------------------------------------------------

class LossHistory(keras.callbacks.Callback):
    def on_train_begin(self, logs={}):
        self.losses = []

    def on_batch_end(self, batch, logs={}):
        self.losses.append(logs.get('loss'))


def test_record_the_loss_history(mnist_like, capsys):
    X_train, Y_train, _, _ = mnist_like

    with pytest.warns(DeprecationWarning) as record:
        model = Sequential()
        model.add(Dense(784, 10, init='uniform'))
        model.add(Activation('softmax'))
        model.compile(loss='categorical_crossentropy', optimizer='rmsprop')

        history = LossHistory()
        model.fit(X_train, Y_train, batch_size=128, nb_epoch=20, verbose=0, callbacks=[history])

    print(history.losses)

    messages = " | ".join(str(w.message) for w in record)
    assert "input_dim=784" in messages and "kernel_initializer" in messages and "epochs" in messages
    assert model.input_shape == (None, 784) and model.output_shape == (None, 10)
    # one float per batch: 20 epochs x 2 batches of 128 over 256 samples
    assert len(history.losses) == 40
    assert all(type(loss) is float and math.isfinite(loss) for loss in history.losses)
    # uniform(-0.05, 0.05) weights start near chance (ln 10); training lowers the loss
    assert history.losses[0] == pytest.approx(math.log(10), abs=0.5)
    assert np.mean(history.losses[-2:]) < 0.5 * np.mean(history.losses[:2])
    printed = capsys.readouterr().out
    assert printed.startswith("[") and printed.count(",") == 39


# -- "Example to checkpoint models" -----------------------------------------------------------------------

def test_checkpoint_models(mnist_like_overfitting, tmp_path, capsys):
    X_train, Y_train, X_test, Y_test = mnist_like_overfitting
    weights_path = str(tmp_path / "weights.hdf5")  # the seed writes "/tmp/weights.hdf5"

    model = Sequential()
    model.add(Dense(784, 10, init='uniform'))
    model.add(Activation('softmax'))
    model.compile(loss='categorical_crossentropy', optimizer='rmsprop')

    '''
    saves the model weights after each epoch if the validation loss decreased
    '''
    checkpointer = ModelCheckpoint(filepath=weights_path, verbose=1, save_best_only=True)
    history = model.fit(X_train, Y_train, batch_size=128, nb_epoch=20, verbose=0,
                        validation_data=(X_test, Y_test), callbacks=[checkpointer])

    check_saved_only_on_improvement(history.history["val_loss"], capsys.readouterr().out, weights_path)
    best = load_model(weights_path)
    assert best.evaluate(X_test, Y_test, batch_size=128, verbose=0) == pytest.approx(
        min(history.history["val_loss"]), rel=1e-5)


def check_saved_only_on_improvement(val_losses, printed, path):
    """The verbose messages say 'saving' exactly on the epochs whose val_loss beat every earlier one."""
    improved = [i for i, v in enumerate(val_losses) if v < min(val_losses[:i], default=math.inf)]
    saved = [int(n) - 1 for n in re.findall(r"Epoch (\d+): val_loss improved from .* saving model to " +
                                            re.escape(path), printed)]
    not_saved = [int(n) - 1 for n in re.findall(r"Epoch (\d+): val_loss did not improve", printed)]
    assert saved == improved
    assert sorted(saved + not_saved) == list(range(len(val_losses)))
    assert not_saved, "the random validation labels should make val_loss stop improving"
    assert "improved from inf to" in printed


# -- "Base class": params, model and the logs keys the docs list ----------------------------------------------

class Recorder(keras.callbacks.Callback):
    def on_train_begin(self, logs={}):
        self.params_seen, self.model_seen = dict(self.params), self.model
        self.batch_begin, self.batch_end, self.epoch_begin, self.epoch_end = [], [], [], []
        self.ended = False

    def on_epoch_begin(self, epoch, logs={}):
        self.epoch_begin.append(epoch)

    def on_epoch_end(self, epoch, logs={}):
        self.epoch_end.append(dict(logs))

    def on_batch_begin(self, batch, logs={}):
        self.batch_begin.append(dict(logs))

    def on_batch_end(self, batch, logs={}):
        self.batch_end.append(dict(logs))

    def on_train_end(self, logs={}):
        self.ended = True


def test_base_class_properties_and_logs(mnist_like):
    X_train, Y_train, X_test, Y_test = mnist_like
    model = Sequential([Dense(10, input_dim=784), Activation('softmax')])
    model.compile(loss='categorical_crossentropy', optimizer='rmsprop', metrics=['accuracy'])
    recorder = Recorder()
    model.fit(X_train, Y_train, batch_size=100, epochs=2, verbose=0, validation_data=(X_test, Y_test),
              callbacks=[recorder])

    assert recorder.model_seen is model
    assert recorder.params_seen["batch_size"] == 100 and recorder.params_seen["epochs"] == 2
    assert recorder.params_seen["verbose"] == 0
    assert recorder.epoch_begin == [0, 1] and recorder.ended
    assert [logs["size"] for logs in recorder.batch_begin] == [100, 100, 56] * 2
    assert all({"loss", "accuracy"} <= set(logs) for logs in recorder.batch_end)
    assert all({"val_loss", "val_accuracy"} <= set(logs) for logs in recorder.epoch_end)


# -- "Available callbacks" with the Keras 0.x signatures -------------------------------------------------

def test_model_checkpoint_saves_after_every_epoch(mnist_like, tmp_path):
    X_train, Y_train, X_test, Y_test = mnist_like
    path = str(tmp_path / "every_epoch.hdf5")
    model = Sequential([Dense(10, input_dim=784), Activation('softmax')])
    model.compile(loss='categorical_crossentropy', optimizer='rmsprop')
    saved_weights = []
    probe = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: saved_weights.append((load_model(path).get_weights(), model.get_weights())))
    model.fit(X_train, Y_train, batch_size=128, epochs=3, verbose=0, validation_data=(X_test, Y_test),
              callbacks=[ModelCheckpoint(path, verbose=0, save_best_only=False), probe])
    assert len(saved_weights) == 3
    for on_disk, live in saved_weights:
        for a, b in zip(on_disk, live):
            np.testing.assert_array_equal(a, b)


def test_early_stopping_on_validation_loss(mnist_like_overfitting):
    X_train, Y_train, X_test, Y_test = mnist_like_overfitting
    model = Sequential([Dense(10, input_dim=784), Activation('softmax')])
    model.compile(loss='categorical_crossentropy', optimizer='rmsprop')
    history = model.fit(X_train, Y_train, batch_size=128, epochs=20, verbose=0, validation_data=(X_test, Y_test),
                        callbacks=[EarlyStopping(patience=0, verbose=0)])
    val = history.history["val_loss"]
    assert len(val) < 20
    assert all(val[i] < min(val[:i], default=math.inf) for i in range(len(val) - 1))
    assert val[-1] >= min(val[:-1])
