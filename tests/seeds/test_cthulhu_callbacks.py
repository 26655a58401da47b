"""Seed `cthulhu-callbacks.md` (the cthulhu fork's docs): every code example, verbatim after the imports.

Import lines: `import fastfit.cthulhu as cthulhu` (the seed writes `cthulhu.callbacks.Callback`),
`from fastfit.cthulhu import *` and `from fastfit.cthulhu.callbacks import LumpCheckpoint`. The hard-coded
'/tmp/weights.hdf5' points into pytest's tmp_path. Data (not defined by the seed): 256 training and 64 test
samples shaped like flattened MNIST. The "Create a callback" snippet defines the same LossHistory class as the
recording example, so the recording example covers both.
"""
import json
import math
import re

import h5py
import numpy as np
import pytest

import fastfit
import fastfit.cthulhu as cthulhu
from fastfit.cthulhu import *  # noqa: F401,F403  (the seed's names: Pile, Daoloth, Azatoth, ...)
from fastfit.cthulhu import Azatoth, Daoloth, Pile  # the same names, spelled out for readers and linters


# -- "Example: recording loss history" -------------------------------------------------------------------------

class LossHistory(cthulhu.callbacks.Callback):
    def on_train_begin(self, logs={}):
        self.losses = []

    def on_batch_end(self, batch, logs={}):
        self.losses.append(logs.get('loss'))


def test_recording_loss_history(mnist_like, capsys):
    x_train, y_train, _, _ = mnist_like

    model = Pile()
    model.add(Daoloth(10, input_dim=784, kernel_initializer='uniform'))
    model.add(Azatoth('softmax'))
    model.conjure(loss='categorical_crossentropy', optimizer='rmsprop')

    history = LossHistory()
    model.summon(x_train, y_train, batch_size=128, epochs=20, verbose=0, callbacks=[history])

    print(history.losses)

    assert isinstance(model, fastfit.models.Sequential)
    assert len(history.losses) == 40  # 20 epochs x 2 batches
    assert all(type(loss) is float and math.isfinite(loss) for loss in history.losses)
    assert history.losses[0] == pytest.approx(math.log(10), abs=0.5)
    assert np.mean(history.losses[-2:]) < 0.5 * np.mean(history.losses[:2])
    assert capsys.readouterr().out.startswith('[')


# -- "Example: model checkpoints" ------------------------------------------------------------------------------

def test_model_checkpoints(mnist_like_overfitting, tmp_path, capsys):
    x_train, y_train, X_test, Y_test = mnist_like_overfitting
    weights_path = str(tmp_path / 'weights.hdf5')  # the seed writes '/tmp/weights.hdf5'

    from fastfit.cthulhu.callbacks import LumpCheckpoint

    model = Pile()
    model.add(Daoloth(10, input_dim=784, kernel_initializer='uniform'))
    model.add(Azatoth('softmax'))
    model.conjure(loss='categorical_crossentropy', optimizer='rmsprop')

    '''
    saves the model weights after each epoch if the validation loss decreased
    '''
    checkpointer = LumpCheckpoint(filepath=weights_path, verbose=1, save_best_only=True)
    history = model.summon(x_train, y_train, batch_size=128, epochs=20, verbose=0, validation_data=(X_test, Y_test), callbacks=[checkpointer])

    val = history.history['val_loss']
    printed = capsys.readouterr().out
    improved = [i for i, v in enumerate(val) if v < min(val[:i], default=math.inf)]
    saved = [int(n) - 1 for n in re.findall(r'Epoch (\d+): val_loss improved from', printed)]
    assert saved == improved and len(improved) < len(val)

    # the file holds Keras class names, and loads under either name
    with h5py.File(weights_path, 'r') as f:
        config = f.attrs['model_config']
    config = json.loads(config.decode() if isinstance(config, bytes) else config)
    assert config['class_name'] == 'Sequential'
    assert [entry['class_name'] for entry in config['config']['layers']][-2:] == ['Dense', 'Activation']
    for loader in (fastfit.models.load_model, cthulhu.load_model):
        best = loader(weights_path)
        assert isinstance(best, Pile)
        assert best.evaluate(X_test, Y_test, batch_size=128, verbose=0) == pytest.approx(min(val), rel=1e-5)
