"""Seed `tf-keras-callbacks.md` (a tf.keras tutorial chapter): every code example, run with the imports changed.

Changes to the seed code: `from tensorflow.keras import ...` and `import tensorflow.keras.backend as K` become
their `fastfit` equivalents (pandas, imported but unused, is dropped); the LearningRateScheduler source's
`isinstance(lr, tf.Tensor)` / `ops.Tensor` checks are TensorFlow-only (spec §4.12), so `tf` and `ops` are
stand-ins whose `Tensor` nothing is an instance of. The JSON log's '../data/' path is relative to a tmp working
directory. Data: 256 training and 64 test samples shaped like flattened MNIST.
"""
import types

import numpy as np
import pytest

import fastfit.backend as K
from fastfit import callbacks, layers, losses, metrics, models  # noqa: F401  (the seed's import line)


class _NotATensor:
    """There are no tensors in fastfit: nothing is an instance of this."""


tf = types.SimpleNamespace(Tensor=_NotATensor)
ops = types.SimpleNamespace(Tensor=_NotATensor)


def tf_model():
    model = models.Sequential([layers.Dense(32, activation='relu', input_shape=(784,)),
                               layers.Dense(10, activation='softmax')])
    model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
    return model


# -- "1. Pre-defined Callbacks" -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["BaseLogger", "History", "EarlyStopping", "TensorBoard", "ModelCheckpoint",
                                  "ReduceLROnPlateau", "TerminateOnNaN", "LearningRateScheduler", "CSVLogger",
                                  "ProgbarLogger"])
def test_predefined_callbacks_exist(name):
    assert issubclass(getattr(callbacks, name), callbacks.Callback)


def test_callbacks_params_model_and_evaluate_predict_hooks(mnist_like):
    """The chapter: callbacks have `params` and `model`, and can be given to evaluate and predict too."""
    x_train, y_train, x_test, y_test = mnist_like
    model = tf_model()
    calls = []

    class Spy(callbacks.Callback):
        def on_train_begin(self, logs=None):
            calls.append(('train_begin', self.params['epochs'], self.model is model))

        def on_test_batch_end(self, batch, logs=None):
            calls.append(('test_batch_end', batch, sorted(logs)))

        def on_predict_batch_end(self, batch, logs=None):
            calls.append(('predict_batch_end', batch, logs['outputs'].shape))

    model.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0, callbacks=[Spy()])
    model.evaluate(x_test, y_test, batch_size=32, verbose=0, callbacks=[Spy()])
    model.predict(x_test, batch_size=48, callbacks=[Spy()])
    assert calls == [('train_begin', 1, True),
                     ('test_batch_end', 0, ['accuracy', 'batch', 'loss', 'size']),
                     ('test_batch_end', 1, ['accuracy', 'batch', 'loss', 'size']),
                     ('predict_batch_end', 0, (48, 10)),
                     ('predict_batch_end', 1, (16, 10))]


# -- "2. Customized Callbacks": the JSON LambdaCallback --------------------------------------------------------

def test_json_logging_lambda_callback(mnist_like, tmp_path, monkeypatch):
    x_train, y_train, x_test, y_test = mnist_like
    (tmp_path / 'data').mkdir()
    (tmp_path / 'work').mkdir()
    monkeypatch.chdir(tmp_path / 'work')

    # Example of the simple callback using LambdaCallback

    import json
    json_log = open('../data/keras_log.json', mode='wt', buffering=1)
    json_logging_callback = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: json_log.write(
            json.dumps(dict(epoch = epoch,**logs)) + '\n'),
        on_train_end=lambda logs: json_log.close()
    )

    history = tf_model().fit(x_train, y_train, batch_size=128, epochs=3, verbose=0,
                             validation_data=(x_test, y_test), callbacks=[json_logging_callback])
    assert json_log.closed
    with open(tmp_path / 'data' / 'keras_log.json') as f:
        records = [json.loads(line) for line in f]
    assert [r['epoch'] for r in records] == [0, 1, 2]
    for record in records:
        assert list(record) == ['epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy']
        for key in ('loss', 'accuracy', 'val_loss', 'val_accuracy'):
            assert record[key] == history.history[key][record['epoch']]  # exact: plain Python floats


# -- "2. Customized Callbacks": the LearningRateScheduler source as a user callback ------------------------------

# Example of the complicated callback through base class inheritance. This is the source code of LearningRateScheduler.

class LearningRateScheduler(callbacks.Callback):

    def __init__(self, schedule, verbose=0):
        super(LearningRateScheduler, self).__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        if not hasattr(self.model.optimizer, 'lr'):
            raise ValueError('Optimizer must have a "lr" attribute.')
        try:
            lr = float(K.get_value(self.model.optimizer.lr))
            lr = self.schedule(epoch, lr)
        except TypeError:  # Support for old API for backward compatibility
            lr = self.schedule(epoch)
        if not isinstance(lr, (tf.Tensor, float, np.float32, np.float64)):
            raise ValueError('The output of the "schedule" function '
                             'should be float.')
        if isinstance(lr, ops.Tensor) and not lr.dtype.is_floating:
            raise ValueError('The dtype of Tensor should be float')
        K.set_value(self.model.optimizer.lr, K.get_value(lr))
        if self.verbose > 0:
            print('\nEpoch %05d: LearningRateScheduler reducing learning '
                 'rate to %s.' % (epoch + 1, lr))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        logs['lr'] = K.get_value(self.model.optimizer.lr)


def test_learning_rate_scheduler_source_runs_as_user_callback(mnist_like, capsys):
    x_train, y_train, _, _ = mnist_like
    model = tf_model()
    scheduler = LearningRateScheduler(lambda epoch, lr: lr if epoch == 0 else lr * 0.5, verbose=1)
    history = model.fit(x_train, y_train, batch_size=128, epochs=4, verbose=0, callbacks=[scheduler])
    assert history.history['lr'] == pytest.approx([0.001, 0.0005, 0.00025, 0.000125])
    assert all(type(lr) is float for lr in history.history['lr'])
    assert K.get_value(model.optimizer.lr) == pytest.approx(0.000125)
    assert 'Epoch 00002: LearningRateScheduler reducing learning rate to 0.0005.' in capsys.readouterr().out


def test_learning_rate_scheduler_source_old_one_argument_api(mnist_like):
    x_train, y_train, _, _ = mnist_like
    model = tf_model()
    history = model.fit(x_train, y_train, batch_size=128, epochs=2, verbose=0,
                        callbacks=[LearningRateScheduler(lambda epoch: 0.01 / (epoch + 1))])
    assert history.history['lr'] == pytest.approx([0.01, 0.005])


def test_learning_rate_scheduler_source_rejects_non_float(mnist_like):
    x_train, y_train, _, _ = mnist_like
    with pytest.raises(ValueError, match='should be float'):
        tf_model().fit(x_train, y_train, batch_size=128, epochs=1, verbose=0,
                       callbacks=[LearningRateScheduler(lambda epoch, lr: '0.1')])
