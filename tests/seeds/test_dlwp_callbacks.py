"""Seed `dlwp-callbacks.md` (Deep Learning with Python): every code example, run with only the import changed.

Changes to the seed code: `import keras` becomes `import fastfit as keras`; the model and the data (which the
seed does not define) are a small binary classifier on 20 features; files are written in a tmp working
directory. The ActivationLogger is run as printed (it fails: spec §4.12) and as corrected by spec §7.24.
"""
import math
import os

import numpy as np
import pytest

import fastfit as keras
from fastfit.models import load_model


def dlwp_model():
    """A DLwP-style binary classifier (the seed assumes `model` exists)."""
    return keras.models.Sequential([keras.layers.Dense(16, activation='relu', input_shape=(20,)),
                                    keras.layers.Dense(1, activation='sigmoid')])


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def make_checkpoint_and_early_stopping_list():
    # Define a list of callbacks to pass into the model.fit method
    callbacks_list = [

        # Interrupt training when improvement stops
        keras.callbacks.EarlyStopping(
            monitor='acc', # Monitor the accuracy
            patience=1,    # Interrupt training when accuracy has stopped improving for more than one epoch
        ),

        # Save the current weights after every epoch
        keras.callbacks.ModelCheckpoint(
            filepath='my_model.h5', # Path to save the model
            monitor='val_loss',     # Only save the model once val_loss has been improved
            save_best_only=True,    # Only save the best
        )
    ]
    return callbacks_list


def test_model_checkpoint_and_early_stopping_with_zero_epochs(binary_data):
    x, y, x_val, y_val = binary_data
    model = dlwp_model()
    before = model.get_weights()
    callbacks_list = make_checkpoint_and_early_stopping_list()

    model.compile(
        optimizer='rmsprop',
        loss='binary_crossentropy',
        metrics=['acc'] # Your EarlyStopping monitors acc, so it should be part of the model's metrics
    )

    history = model.fit(
        x, y,
        epochs=0,
        batch_size=32,
        callbacks=callbacks_list,
        validation_data=(x_val, y_val) # Your ModelCheckpoint needs val_loss so you need to define validation data
    )

    # epochs=0: on_train_begin and on_train_end only; nothing trained, nothing saved
    assert history.history == {} and history.epoch == []
    assert not os.path.exists('my_model.h5')
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    stopper = callbacks_list[0]
    assert stopper.wait == 0 and stopper.stopped_epoch == 0 and stopper.best == -math.inf  # 'acc': higher is better


def test_model_checkpoint_and_early_stopping_when_training(binary_data, recwarn):
    """The same list over real epochs: 'acc' is in the logs, the best model by val_loss is on disk."""
    x, y, x_val, y_val = binary_data
    model = dlwp_model()
    callbacks_list = make_checkpoint_and_early_stopping_list()
    model.compile(optimizer='rmsprop', loss='binary_crossentropy', metrics=['acc'])
    history = model.fit(x, y, epochs=10, batch_size=32, callbacks=callbacks_list, validation_data=(x_val, y_val),
                        verbose=0)

    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # 'acc' and 'val_loss' were found
    acc = history.history['acc']
    stopped_early = len(acc) < 10
    if stopped_early:  # patience=1: stops at the first epoch whose acc does not beat every earlier one
        assert acc[-1] <= max(acc[:-1])
    assert all(acc[i] > max(acc[:i], default=-1) for i in range(len(acc) - stopped_early))
    best = load_model('my_model.h5')
    assert best.evaluate(x_val, y_val, batch_size=32, verbose=0)[0] == pytest.approx(
        min(history.history['val_loss']), rel=1e-5)


def test_reduce_lr_on_plateau(binary_data):
    x, y, x_val, y_val = binary_data
    model = dlwp_model()
    model.compile(optimizer='rmsprop', loss='binary_crossentropy', metrics=['acc'])

    callbacks_list = [
        keras.callbacks.ReduceLROnPlateau(
            monitor='val_loss', # Monitors the model's validation loss
            factor=0.1,         # Divides the learning rate by 10 when triggered
            patience=10,        # Trigger the callback after val_loss has stopped improving for 10 epochs
        )
    ]

    history = model.fit(
        x, y,
        epochs=10,
        batch_size=32,
        callbacks=callbacks_list,
        validation_data=(x_val, y_val) # You need to pass validation data
    )

    # 10 epochs can never make 10 non-improving ones (the first always improves): the rate stays (spec §4.9)
    assert history.history['lr'] == pytest.approx([0.001] * 10)
    assert len(history.history['val_loss']) == 10


# -- "A custom callback": ActivationLogger --------------------------------------------------------------------

class ActivationLoggerAsPrinted(keras.callbacks.Callback):

    def set_model(self, model):
        self.model = model
        layer_outputs = [layer.output for layer in model.layers]
        self.activations_model = keras.models.Model(model.input, layer_outputs)

    def on_epoch_end(self, epoch, logs=None):
        if self.validation_data is None:
            raise RuntimeError('Requires validation_data.')
        validation_sample = self.validation_data[0][0:1]
        activation = self.activations_model.predict(validation_sample)
        f = open('activation_at_epoch_' + str(epoch) + '.npz', 'w')
        np.savez(f, activations)  # noqa: F821  (the printed code's bug)
        f.close()


class ActivationLogger(keras.callbacks.Callback):
    """As printed, with the two fixes of spec §7.24: binary mode, and the arrays that exist (`*activation`)."""

    def set_model(self, model):
        self.model = model
        layer_outputs = [layer.output for layer in model.layers]
        self.activations_model = keras.models.Model(model.input, layer_outputs)

    def on_epoch_end(self, epoch, logs=None):
        if self.validation_data is None:
            raise RuntimeError('Requires validation_data.')
        validation_sample = self.validation_data[0][0:1]
        activation = self.activations_model.predict(validation_sample)
        f = open('activation_at_epoch_' + str(epoch) + '.npz', 'wb')
        np.savez(f, *activation)
        f.close()


def compiled_model_with_dropout():
    model = keras.models.Sequential([keras.layers.Dense(16, activation='relu', input_shape=(20,)),
                                     keras.layers.Dropout(0.5),
                                     keras.layers.Dense(1, activation='sigmoid')])
    model.compile(optimizer='rmsprop', loss='binary_crossentropy', metrics=['acc'])
    return model


def test_activation_logger_as_printed_fails_with_its_name_error(binary_data):
    x, y, x_val, y_val = binary_data
    model = compiled_model_with_dropout()
    with pytest.raises(NameError, match='activations'):  # the callback's own bug, propagated unchanged
        model.fit(x, y, epochs=2, batch_size=32, validation_data=(x_val, y_val), verbose=0,
                  callbacks=[ActivationLoggerAsPrinted()])


def test_activation_logger_corrected(binary_data):
    x, y, x_val, y_val = binary_data
    model = compiled_model_with_dropout()
    logger = ActivationLogger()
    model.fit(x, y, epochs=3, batch_size=32, validation_data=(x_val, y_val), verbose=0, callbacks=[logger])

    assert logger.validation_data[0] is x_val
    assert sorted(os.listdir('.')) == [f'activation_at_epoch_{e}.npz' for e in range(3)]
    with np.load('activation_at_epoch_2.npz') as saved:
        arrays = [saved[f'arr_{i}'] for i in range(len(saved.files))]
    assert [a.shape for a in arrays] == [(1, 16), (1, 16), (1, 1)]  # one per layer of model.layers
    kernel, bias = model.layers[0].get_weights()
    np.testing.assert_allclose(arrays[0], np.maximum(x_val[0:1] @ kernel + bias, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(arrays[1], arrays[0])  # Dropout is the identity in predict
    np.testing.assert_allclose(arrays[2], model.predict(x_val[0:1]), rtol=1e-6)  # shares the trained weights


def test_activation_logger_requires_validation_data(binary_data):
    x, y, _, _ = binary_data
    model = compiled_model_with_dropout()
    with pytest.raises(RuntimeError, match='Requires validation_data'):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[ActivationLogger()])
