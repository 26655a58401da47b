"""Seed `keras-2.2-callbacks-ko.md` (Keras 2.2 docs, Korean): every callback it documents and every code example.

Changes to the seed code: `keras` imports become `fastfit` imports; files are written in pytest's tmp_path
(relative names run in a tmp working directory, the hard-coded '/tmp/weights.hdf5' points into tmp_path); the
data (not defined by the seed) are 256 training and 64 test samples shaped like flattened MNIST; `fit(...)`
placeholders are filled with that data; `processes = ...` is a real child process.
"""
import csv
import http.server
import json
import math
import multiprocessing
import os
import re
import threading
import time
import urllib.parse

import numpy as np
import pytest

import fastfit as keras
from fastfit.callbacks import CSVLogger, LambdaCallback, ModelCheckpoint, ReduceLROnPlateau
from fastfit.layers import Activation, Dense
from fastfit.models import Sequential, load_model


def seed_model(metrics=None, optimizer='rmsprop'):
    """The model of the seed's examples."""
    model = Sequential()
    model.add(Dense(10, input_dim=784, kernel_initializer='uniform'))
    model.add(Activation('softmax'))
    model.compile(loss='categorical_crossentropy', optimizer=optimizer, metrics=metrics)
    return model


class LogRecorder(keras.callbacks.Callback):
    """Copies of every batch and epoch logs dict."""

    def on_train_begin(self, logs=None):
        self.batches, self.epochs = [], []

    def on_batch_end(self, batch, logs=None):
        self.batches.append(dict(logs))

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(dict(logs))


# -- Callback: properties and logs -------------------------------------------------------------------------

def test_callback_params_model_and_logs_keys(mnist_like):
    x_train, y_train, x_test, y_test = mnist_like
    model = seed_model(metrics=['acc'])
    seen = {}

    class Inspector(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen['params'], seen['model'] = dict(self.params), self.model

        def on_batch_begin(self, batch, logs=None):
            seen.setdefault('batch_begin', []).append(dict(logs))

    recorder = LogRecorder()
    model.fit(x_train, y_train, batch_size=128, epochs=2, verbose=0, validation_data=(x_test, y_test),
              callbacks=[Inspector(), recorder])
    assert seen['model'] is model
    assert {'batch_size': 128, 'epochs': 2, 'samples': 256, 'verbose': 0, 'do_validation': True}.items() \
        <= seen['params'].items()
    assert seen['params']['metrics'] == ['loss', 'acc', 'val_loss', 'val_acc']
    assert [logs['size'] for logs in seen['batch_begin']] == [128, 128, 128, 128]
    assert all({'loss', 'acc'} <= set(logs) for logs in recorder.batches)
    assert [sorted(logs) for logs in recorder.epochs] == [['acc', 'loss', 'val_acc', 'val_loss']] * 2


# -- BaseLogger, History ------------------------------------------------------------------------------------

def test_base_logger_averages_batches_weighted_by_size(mnist_like):
    x_train, y_train, _, _ = mnist_like
    model = seed_model(metrics=['acc'])
    recorder = LogRecorder()
    model.fit(x_train, y_train, batch_size=100, epochs=2, verbose=0,
              callbacks=[keras.callbacks.BaseLogger(stateful_metrics=None), recorder])
    for epoch in range(2):
        batches = recorder.batches[3 * epoch:3 * epoch + 3]
        assert [b['size'] for b in batches] == [100, 100, 56]
        for key in ('loss', 'acc'):
            mean = sum(b[key] * b['size'] for b in batches) / 256
            assert recorder.epochs[epoch][key] == pytest.approx(mean, rel=1e-6)
        assert 'batch' not in recorder.epochs[epoch] and 'size' not in recorder.epochs[epoch]


def test_history_is_returned_by_fit(mnist_like):
    x_train, y_train, x_test, y_test = mnist_like
    model = seed_model(metrics=['acc'])
    history = model.fit(x_train, y_train, batch_size=128, epochs=3, verbose=0, validation_data=(x_test, y_test))
    assert isinstance(history, keras.callbacks.History) and model.history is history
    assert history.epoch == [0, 1, 2] and history.model is model
    assert list(history.history) == ['loss', 'acc', 'val_loss', 'val_acc']
    assert all(len(v) == 3 and all(type(x) is float for x in v) for v in history.history.values())


# -- TerminateOnNaN ---------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_terminate_on_nan(capsys):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 8)).astype('float32'), rng.normal(size=(256, 1)).astype('float32')
    model = Sequential([Dense(1, input_dim=8)])
    model.compile(loss='mse', optimizer=keras.optimizers.SGD(lr=1e30))  # diverges within a few batches
    recorder = LogRecorder()
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0,
                        callbacks=[keras.callbacks.TerminateOnNaN(), recorder])
    bad = [i for i, logs in enumerate(recorder.batches) if not math.isfinite(logs['loss'])]
    assert bad and len(recorder.batches) == bad[0] + 1 < 32
    assert f"Batch {bad[0]}: Invalid loss, terminating training" in capsys.readouterr().out
    assert len(history.history['loss']) == 1 and not math.isfinite(history.history['loss'][0])


# -- ProgbarLogger ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("count_mode, target", [('samples', '256/256'), ('steps', '2/2')])
def test_progbar_logger(mnist_like, capsys, count_mode, target):
    x_train, y_train, _, _ = mnist_like
    model = seed_model(metrics=['acc'])
    history = model.fit(x_train, y_train, batch_size=128, epochs=2, verbose=1,
                        callbacks=[keras.callbacks.ProgbarLogger(count_mode=count_mode, stateful_metrics=None)])
    out = capsys.readouterr().out
    assert out.count('Epoch 1/2') == 1 and out.count('Epoch 2/2') == 1  # the user's bar only, not two
    final = [line for line in out.replace('\r', '\n').splitlines() if line.startswith(target + ' [')][-1]
    assert f"loss: {history.history['loss'][-1]:.4f}" in final and f"acc: {history.history['acc'][-1]:.4f}" in final


def test_progbar_logger_is_silent_with_verbose_0_and_checks_count_mode(mnist_like, capsys):
    x_train, y_train, _, _ = mnist_like
    seed_model().fit(x_train, y_train, batch_size=128, epochs=1, verbose=0,
                     callbacks=[keras.callbacks.ProgbarLogger()])
    assert capsys.readouterr().out == ''
    with pytest.raises(ValueError, match='count_mode'):
        keras.callbacks.ProgbarLogger(count_mode='batches')


# -- ModelCheckpoint ------------------------------------------------------------------------------------------

def test_model_checkpoint_filepath_formatting(mnist_like, tmp_path, monkeypatch):
    x_train, y_train, x_test, y_test = mnist_like
    monkeypatch.chdir(tmp_path)
    model = seed_model()
    history = model.fit(x_train, y_train, batch_size=128, epochs=3, verbose=0, validation_data=(x_test, y_test),
                        callbacks=[keras.callbacks.ModelCheckpoint('weights.{epoch:02d}-{val_loss:.2f}.hdf5')])
    expected = {f"weights.{e + 1:02d}-{v:.2f}.hdf5" for e, v in enumerate(history.history['val_loss'])}
    assert set(os.listdir(tmp_path)) == expected
    last = load_model(f"weights.03-{history.history['val_loss'][2]:.2f}.hdf5")
    for a, b in zip(last.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_model_checkpoint_weights_only_and_period(mnist_like, tmp_path):
    x_train, y_train, x_test, y_test = mnist_like
    model = seed_model(metrics=['acc'])
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / 'w{epoch}.h5'), monitor='val_acc', verbose=0,
                                                 save_best_only=False, save_weights_only=True, mode='max', period=2)
    model.fit(x_train, y_train, batch_size=128, epochs=5, verbose=0, validation_data=(x_test, y_test),
              callbacks=[checkpoint])
    assert sorted(os.listdir(tmp_path)) == ['w2.h5', 'w4.h5']
    fresh = Sequential([Dense(10, input_dim=784), Activation('softmax')])
    fresh.load_weights(str(tmp_path / 'w4.h5'))
    assert fresh.get_weights()[0].shape == (784, 10)
    with pytest.raises(ValueError):
        load_model(str(tmp_path / 'w4.h5'))  # a weights-only file is not a model


# -- EarlyStopping --------------------------------------------------------------------------------------------

def test_early_stopping_with_restore_best_weights(mnist_like_overfitting):
    x_train, y_train, x_test, y_test = mnist_like_overfitting
    model = seed_model()
    stopper = keras.callbacks.EarlyStopping(monitor='val_loss', min_delta=0, patience=2, verbose=1, mode='auto',
                                            baseline=None, restore_best_weights=True)
    history = model.fit(x_train, y_train, batch_size=128, epochs=20, verbose=0, validation_data=(x_test, y_test),
                        callbacks=[stopper])
    val = history.history['val_loss']
    assert len(val) < 20 and stopper.stopped_epoch == len(val) - 1
    assert min(val) < min(val[-2:])  # the last two epochs did not improve
    assert model.evaluate(x_test, y_test, batch_size=128, verbose=0) == pytest.approx(min(val), rel=1e-5)


# -- RemoteMonitor --------------------------------------------------------------------------------------------

class _Collector(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        self.server.received.append((self.path, self.headers.get('Content-Type'), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def collector():
    server = http.server.HTTPServer(('127.0.0.1', 0), _Collector)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize("send_as_json", [False, True])
def test_remote_monitor_posts_epoch_logs(mnist_like, collector, send_as_json):
    x_train, y_train, x_test, y_test = mnist_like
    root = f'http://127.0.0.1:{collector.server_port}'
    monitor = keras.callbacks.RemoteMonitor(root=root, path='/publish/epoch/end/', field='data', headers=None,
                                            send_as_json=send_as_json)
    history = seed_model().fit(x_train, y_train, batch_size=128, epochs=2, verbose=0,
                               validation_data=(x_test, y_test), callbacks=[monitor])
    assert len(collector.received) == 2
    for epoch, (path, content_type, body) in enumerate(collector.received):
        assert path == '/publish/epoch/end/'
        if send_as_json:
            assert content_type.startswith('application/json')
            sent = json.loads(body)
        else:
            sent = json.loads(urllib.parse.parse_qs(body.decode())['data'][0])
        assert sent['epoch'] == epoch
        assert sent['val_loss'] == pytest.approx(history.history['val_loss'][epoch])


def test_remote_monitor_unreachable_server_only_warns(mnist_like):
    x_train, y_train, _, _ = mnist_like
    with pytest.warns(UserWarning, match='127.0.0.1:9'):
        history = seed_model().fit(x_train, y_train, batch_size=128, epochs=1, verbose=0,
                                   callbacks=[keras.callbacks.RemoteMonitor(root='http://127.0.0.1:9')])
    assert history.epoch == [0]


# -- LearningRateScheduler ---------------------------------------------------------------------------------------

def test_learning_rate_scheduler(mnist_like, capsys):
    x_train, y_train, _, _ = mnist_like
    model = seed_model(optimizer=keras.optimizers.SGD(lr=0.1))
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch, verbose=1)
    history = model.fit(x_train, y_train, batch_size=128, epochs=3, verbose=0, callbacks=[scheduler])
    assert history.history['lr'] == pytest.approx([0.1, 0.05, 0.025])
    assert keras.backend.get_value(model.optimizer.lr) == pytest.approx(0.025)
    assert 'LearningRateScheduler setting learning rate to 0.05' in capsys.readouterr().out
    one_argument = keras.callbacks.LearningRateScheduler(lambda epoch: 0.01)  # the Keras 2.0 form
    model.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0, callbacks=[one_argument])
    assert model.optimizer.lr == pytest.approx(0.01)


# -- TensorBoard ---------------------------------------------------------------------------------------------

def test_tensorboard_writes_epoch_scalars(mnist_like, tmp_path):
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    x_train, y_train, x_test, y_test = mnist_like
    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path / 'logs'), histogram_freq=0, batch_size=32,
                                        write_graph=True, write_grads=False, write_images=False,
                                        embeddings_freq=0, embeddings_layer_names=None, embeddings_metadata=None,
                                        embeddings_data=None, update_freq='epoch')
    history = seed_model(metrics=['acc']).fit(x_train, y_train, batch_size=128, epochs=2, verbose=0,
                                              validation_data=(x_test, y_test), callbacks=[board])
    files = [f for f in os.listdir(tmp_path / 'logs') if f.startswith('events.out.tfevents')]
    assert len(files) == 1
    scalars = {}
    for event in LegacyEventFileLoader(str(tmp_path / 'logs' / files[0])).Load():
        for value in event.summary.value:
            scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    for key, values in history.history.items():
        assert scalars[key] == {0: pytest.approx(values[0], rel=1e-6), 1: pytest.approx(values[1], rel=1e-6)}


# -- ReduceLROnPlateau ---------------------------------------------------------------------------------------

def test_reduce_lr_on_plateau_docstring_example(mnist_like):
    """The docstring example monitors val_loss without validation data: it warns and changes nothing."""
    X_train, Y_train, _, _ = mnist_like
    model = seed_model()
    reduce_lr = ReduceLROnPlateau(monitor='val_loss', factor=0.2,
                                  patience=5, min_lr=0.001)
    with pytest.warns(RuntimeWarning, match='val_loss'):
        model.fit(X_train, Y_train, callbacks=[reduce_lr], verbose=0)
    assert model.optimizer.lr == pytest.approx(0.001)


def expected_plateau_rates(monitored, lr, factor, patience, min_lr, min_delta=1e-4):
    """The rate used in each epoch under spec §4.9 (no cooldown)."""
    rates, best, wait = [], math.inf, 0
    for value in monitored:
        rates.append(lr)
        if value < best - min_delta:
            best, wait = value, 0
        else:
            wait += 1
            if wait >= patience and lr > min_lr:
                lr, wait = max(lr * factor, min_lr), 0
    return rates


def test_reduce_lr_on_plateau_with_validation(mnist_like_overfitting):
    X_train, Y_train, X_test, Y_test = mnist_like_overfitting
    model = seed_model(optimizer=keras.optimizers.SGD(lr=0.5))
    reduce_lr = ReduceLROnPlateau(monitor='val_loss', factor=0.2, patience=2, min_lr=0.001)
    history = model.fit(X_train, Y_train, batch_size=128, epochs=12, verbose=0, validation_data=(X_test, Y_test),
                        callbacks=[reduce_lr])
    expected = expected_plateau_rates(history.history['val_loss'], 0.5, 0.2, 2, 0.001)
    assert history.history['lr'] == pytest.approx(expected, rel=1e-6)
    assert len(set(expected)) > 1, "the plateau should have lowered the rate at least once"


# -- CSVLogger -------------------------------------------------------------------------------------------------

def test_csv_logger_example(mnist_like, tmp_path, monkeypatch):
    X_train, Y_train, _, _ = mnist_like
    monkeypatch.chdir(tmp_path)
    model = seed_model(metrics=['acc'])
    csv_logger = CSVLogger('training.log')
    history = model.fit(X_train, Y_train, callbacks=[csv_logger], epochs=2, verbose=0)
    with open('training.log', newline='') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['epoch', 'acc', 'loss']
    assert [int(r[0]) for r in rows[1:]] == [0, 1]
    for row, acc, loss in zip(rows[1:], history.history['acc'], history.history['loss']):
        assert float(row[1]) == pytest.approx(acc) and float(row[2]) == pytest.approx(loss)


def test_csv_logger_separator_and_append(mnist_like, tmp_path):
    X_train, Y_train, _, _ = mnist_like
    path = str(tmp_path / 'run.csv')
    model = seed_model()
    for _ in range(2):
        model.fit(X_train, Y_train, batch_size=128, epochs=2, verbose=0,
                  callbacks=[CSVLogger(path, separator=';', append=True)])
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0] == 'epoch;loss' and len(lines) == 5 and lines.count('epoch;loss') == 1


# -- LambdaCallback ----------------------------------------------------------------------------------------------

def test_lambda_callback_examples(mnist_like, tmp_path, monkeypatch, capsys):
    X_train, Y_train, _, _ = mnist_like
    monkeypatch.chdir(tmp_path)
    model = seed_model()
    context = multiprocessing.get_context('fork')
    started = [context.Process(target=time.sleep, args=(60,)) for _ in range(2)]
    for p in started:
        p.start()
    try:
        # Print the batch number at the beginning of every batch.
        batch_print_callback = LambdaCallback(
            on_batch_begin=lambda batch,logs: print(batch))

        # Stream the epoch loss to a file in JSON format. The file content
        # is not well-formed JSON but rather has a JSON object per line.
        import json
        json_log = open('loss_log.json', mode='wt', buffering=1)
        json_logging_callback = LambdaCallback(
            on_epoch_end=lambda epoch, logs: json_log.write(
                json.dumps({'epoch': epoch, 'loss': logs['loss']}) + '\n'),
            on_train_end=lambda logs: json_log.close()
        )

        # Terminate some processes after having finished model training.
        processes = started
        cleanup_callback = LambdaCallback(
            on_train_end=lambda logs: [
                p.terminate() for p in processes if p.is_alive()])

        history = model.fit(X_train, Y_train, batch_size=128, epochs=2, verbose=0,
                            callbacks=[batch_print_callback,
                                       json_logging_callback,
                                       cleanup_callback])
        for p in started:
            p.join(timeout=10)
        assert all(not p.is_alive() and p.exitcode is not None and p.exitcode < 0 for p in started)
    finally:
        for p in started:
            if p.is_alive():
                p.kill()
                p.join()
    assert capsys.readouterr().out.split() == ['0', '1', '0', '1']
    assert json_log.closed
    with open('loss_log.json') as f:
        lines = [json.loads(line) for line in f]
    assert lines == [{'epoch': 0, 'loss': pytest.approx(history.history['loss'][0])},
                     {'epoch': 1, 'loss': pytest.approx(history.history['loss'][1])}]


# -- "Create a callback": LossHistory, and the checkpoint example -----------------------------------------------

class LossHistory(keras.callbacks.Callback):
    def on_train_begin(self, logs={}):
        self.losses = []

    def on_batch_end(self, batch, logs={}):
        self.losses.append(logs.get('loss'))


def test_record_the_loss_history(mnist_like, capsys):
    x_train, y_train, _, _ = mnist_like

    model = Sequential()
    model.add(Dense(10, input_dim=784, kernel_initializer='uniform'))
    model.add(Activation('softmax'))
    model.compile(loss='categorical_crossentropy', optimizer='rmsprop')

    history = LossHistory()
    model.fit(x_train, y_train, batch_size=128, epochs=20, verbose=0, callbacks=[history])

    print(history.losses)

    assert len(history.losses) == 40
    assert all(type(loss) is float and math.isfinite(loss) for loss in history.losses)
    assert np.mean(history.losses[-2:]) < 0.5 * np.mean(history.losses[:2])
    assert capsys.readouterr().out.startswith('[')


def test_model_checkpoints(mnist_like_overfitting, tmp_path, capsys):
    x_train, y_train, X_test, Y_test = mnist_like_overfitting
    weights_path = str(tmp_path / 'weights.hdf5')  # the seed writes '/tmp/weights.hdf5'

    model = Sequential()
    model.add(Dense(10, input_dim=784, kernel_initializer='uniform'))
    model.add(Activation('softmax'))
    model.compile(loss='categorical_crossentropy', optimizer='rmsprop')

    '''
    saves the model weights after each epoch if the validation loss decreased
    '''
    checkpointer = ModelCheckpoint(filepath=weights_path, verbose=1, save_best_only=True)
    history = model.fit(x_train, y_train, batch_size=128, epochs=20, verbose=0, validation_data=(X_test, Y_test),
                        callbacks=[checkpointer])

    val = history.history['val_loss']
    printed = capsys.readouterr().out
    improved = [i for i, v in enumerate(val) if v < min(val[:i], default=math.inf)]
    saved = [int(n) - 1 for n in re.findall(r'Epoch (\d+): val_loss improved from', printed)]
    assert saved == improved and len(improved) < len(val)
    assert load_model(weights_path).evaluate(X_test, Y_test, batch_size=128, verbose=0) == pytest.approx(
        min(val), rel=1e-5)
