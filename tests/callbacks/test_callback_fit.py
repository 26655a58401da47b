"""Callbacks driven by the real fit/evaluate/predict: hook order, params, logs, numbering, stopping, errors."""
import json

import numpy as np
import pytest

import fastfit
from fastfit.callbacks import (Callback, CSVLogger, EarlyStopping, LambdaCallback, LearningRateScheduler,
                               ProgbarLogger, ReduceLROnPlateau, TerminateOnNaN)

from callback_helpers import tiny_classifier

EPOCH_HOOKS = ("on_train_begin", "on_train_end", "on_test_begin", "on_test_end", "on_predict_begin",
               "on_predict_end")
INDEXED_HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
                 "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end")


class Recorder(Callback):
    """Records (hook, index, logs copy) for every hook, plus what it saw at on_train_begin."""

    def __init__(self):
        super().__init__()
        self.events = []
        for name in EPOCH_HOOKS:
            setattr(self, name, self._recorder(name, indexed=False))
        for name in INDEXED_HOOKS:
            setattr(self, name, self._recorder(name, indexed=True))

    def _recorder(self, name, indexed):
        def record(*args):
            index, logs = (args[0], args[1]) if indexed else (None, args[0])
            assert isinstance(logs, dict)
            if name == "on_train_begin":
                self.seen_at_begin = (self.model, dict(self.params), self.validation_data)
            self.events.append((name, index, dict(logs)))
        return record

    def names(self, *keep):
        return [(name, index) for name, index, _ in self.events if not keep or name in keep]


@pytest.fixture
def setup():
    return tiny_classifier()


def test_hook_order_with_validation(setup):
    model, x, y = setup
    recorder = Recorder()
    model.fit(x[:30], y[:30], batch_size=16, epochs=2, verbose=0, validation_data=(x[30:], y[30:]),
              callbacks=[recorder])
    epoch = [("on_train_batch_begin", 0), ("on_train_batch_end", 0), ("on_train_batch_begin", 1),
             ("on_train_batch_end", 1), ("on_test_begin", None), ("on_test_batch_begin", 0),
             ("on_test_batch_end", 0), ("on_test_end", None)]
    assert recorder.names() == ([("on_train_begin", None)]
                                + [("on_epoch_begin", 0)] + epoch + [("on_epoch_end", 0)]
                                + [("on_epoch_begin", 1)] + epoch + [("on_epoch_end", 1)]
                                + [("on_train_end", None)])


def test_params_model_and_validation_data_before_train_begin(setup):
    model, x, y = setup
    recorder = Recorder()
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_split=0.25, callbacks=[recorder])
    seen_model, params, validation = recorder.seen_at_begin
    assert seen_model is model
    assert params["steps"] in (None, 2)
    assert {k: v for k, v in params.items() if k != "steps"} == {
        "batch_size": 16, "epochs": 3, "samples": 30, "verbose": 0, "do_validation": True,
        "metrics": ["loss", "acc", "val_loss", "val_acc"]}
    np.testing.assert_allclose(validation[0], x[30:])
    np.testing.assert_allclose(validation[1], y[30:])
    recorder = Recorder()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[recorder])
    assert recorder.seen_at_begin[2] is None and recorder.seen_at_begin[1]["do_validation"] is False
    assert recorder.seen_at_begin[1]["metrics"] == ["loss", "acc"]


def test_logs_keys_types_and_json(setup):
    model, x, y = setup
    recorder = Recorder()
    history = model.fit(x[:30], y[:30], batch_size=16, epochs=2, verbose=0, validation_data=(x[30:], y[30:]),
                        callbacks=[recorder])
    for name, index, logs in recorder.events:
        json.dumps(logs)
        if name in ("on_train_batch_begin", "on_test_batch_begin"):
            assert set(logs) == {"batch", "size"} and logs["batch"] == index
        elif name in ("on_train_batch_end", "on_test_batch_end"):
            assert set(logs) == {"batch", "size", "loss", "acc"}
            assert type(logs["batch"]) is int and type(logs["size"]) is int
            assert type(logs["loss"]) is float and type(logs["acc"]) is float
        elif name == "on_epoch_end":
            assert list(logs) == ["loss", "acc", "val_loss", "val_acc"]
            assert all(isinstance(v, float) and not isinstance(v, np.float32) for v in logs.values())
        elif name == "on_test_end":
            assert set(logs) == {"loss", "acc"}
        elif name == "on_train_end":
            assert logs == recorder.events[-2][2]  # a copy of the last epoch's logs
        elif name in ("on_train_begin", "on_epoch_begin", "on_test_begin"):
            assert logs == {}
    sizes = [logs["size"] for name, _, logs in recorder.events if name == "on_train_batch_end"]
    assert sizes == [16, 14, 16, 14]
    # epoch value = size-weighted mean of the batch values
    batch_losses = [logs["loss"] for name, _, logs in recorder.events if name == "on_train_batch_end"][:2]
    assert history.history["loss"][0] == pytest.approx((16 * batch_losses[0] + 14 * batch_losses[1]) / 30)
    json.dumps(history.history)


def test_epoch_numbering_with_initial_epoch(setup, capsys):
    model, x, y = setup
    recorder = Recorder()
    history = model.fit(x, y, epochs=4, initial_epoch=2, verbose=2, callbacks=[recorder])
    assert history.epoch == [2, 3]
    assert recorder.names("on_epoch_begin") == [("on_epoch_begin", 2), ("on_epoch_begin", 3)]
    out = capsys.readouterr().out
    assert "Epoch 3/4" in out and "Epoch 4/4" in out and "Epoch 1/4" not in out


def test_zero_epochs_only_train_begin_and_end(setup):
    model, x, y = setup
    recorder = Recorder()
    history = model.fit(x, y, epochs=0, verbose=1, callbacks=[recorder], validation_data=(x, y))
    assert recorder.names() == [("on_train_begin", None), ("on_train_end", None)]
    assert history.history == {} and history.epoch == []


class StopAt(Callback):
    def __init__(self, hook, at):
        super().__init__()
        self.at = at
        setattr(self, hook, self.stop)

    def stop(self, index, logs=None):
        if index == self.at:
            self.model.stop_training = True


def test_stop_in_batch_end_skips_validation_of_that_epoch(setup):
    model, x, y = setup
    recorder = Recorder()
    history = model.fit(x[:30], y[:30], batch_size=8, epochs=3, verbose=0, validation_data=(x[30:], y[30:]),
                        callbacks=[StopAt("on_batch_end", 1), recorder])
    assert history.epoch == [0]
    assert recorder.names("on_train_batch_end") == [("on_train_batch_end", 0), ("on_train_batch_end", 1)]
    assert "on_test_begin" not in [name for name, _ in recorder.names()]
    assert set(history.history) == {"loss", "acc"}
    assert model.stop_training is True
    history = model.fit(x, y, epochs=2, verbose=0)  # the next fit resets the flag
    assert history.epoch == [0, 1]


def test_stop_on_the_last_batch_is_kept_through_validation(setup):
    model, x, y = setup
    history = model.fit(x[:30], y[:30], batch_size=10, epochs=3, verbose=0, validation_data=(x[30:], y[30:]),
                        callbacks=[StopAt("on_batch_end", 2)])
    assert history.epoch == [0] and "val_loss" in history.history


def test_stop_in_train_begin_or_epoch_end(setup):
    model, x, y = setup

    class StopEarly(Callback):
        def on_train_begin(self, logs=None):
            self.model.stop_training = True

    recorder = Recorder()
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[StopEarly(), recorder])
    assert history.epoch == [0]
    assert len(recorder.names("on_train_batch_end")) == 1
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[StopAt("on_epoch_end", 1)])
    assert history.epoch == [0, 1]


def test_a_raising_callback_reaches_the_caller_and_the_model_still_trains(setup):
    model, x, y = setup

    class Boom(RuntimeError):
        pass

    def explode(batch, logs):
        if batch == 1:
            raise Boom("raised in on_batch_end")

    with pytest.raises(Boom, match="raised in on_batch_end"):
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[LambdaCallback(on_batch_end=explode)])
    with pytest.raises(ZeroDivisionError):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[LambdaCallback(on_epoch_end=lambda e, l: 1 / 0)])
    before = model.evaluate(x, y, verbose=0)[0]
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0)
    assert history.epoch == [0, 1, 2, 3, 4]
    assert model.evaluate(x, y, verbose=0)[0] < before


@pytest.mark.parametrize("bad", [["early"], [EarlyStopping], EarlyStopping(), [Callback(), None]])
def test_non_callbacks_are_type_errors(setup, bad):
    model, x, y = setup
    weights = model.get_weights()
    with pytest.raises(TypeError, match="Callback"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=bad)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_batch_hooks_are_called_once_per_batch_in_every_style(setup):
    model, x, y = setup

    class OldStyle(Callback):
        count = 0

        def on_batch_end(self, batch, logs=None):
            self.count += 1

    class NewStyle(Callback):
        count = 0

        def on_train_batch_end(self, batch, logs=None):
            self.count += 1

    lam = []
    old, new = OldStyle(), NewStyle()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0,
              callbacks=[old, new, LambdaCallback(on_batch_end=lambda b, l: lam.append(b))])
    assert old.count == new.count == len(lam) == 6 and lam == [0, 1, 2, 0, 1, 2]


def test_seed_loss_history_one_entry_per_batch():
    rng = np.random.default_rng(3)
    x = rng.random((256, 20)).astype("float32")
    y = fastfit.utils.to_categorical(rng.integers(0, 10, 256), 10)

    class LossHistory(fastfit.callbacks.Callback):
        def on_train_begin(self, logs={}):
            self.losses = []

        def on_batch_end(self, batch, logs={}):
            self.losses.append(logs.get("loss"))

    model = fastfit.Sequential()
    model.add(fastfit.layers.Dense(10, input_dim=20, kernel_initializer="uniform"))
    model.add(fastfit.layers.Activation("softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="rmsprop")
    history = LossHistory()
    model.fit(x, y, batch_size=128, epochs=20, verbose=0, callbacks=[history])
    assert len(history.losses) == 40 and all(type(v) is float for v in history.losses)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow in the NumPy engine is the point
def test_terminate_on_nan_end_to_end(capsys):
    x = np.full((16, 2), 1e18, dtype="float32")
    y = np.full((16, 1), -1e18, dtype="float32")
    model = fastfit.Sequential()
    model.add(fastfit.layers.Dense(1, input_dim=2))
    model.compile(optimizer=fastfit.optimizers.SGD(lr=1e10), loss="mse")
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[TerminateOnNaN()])
    assert len(history.history["loss"]) == 1 and not np.isfinite(history.history["loss"][0])
    assert "Invalid loss, terminating training" in capsys.readouterr().out


def test_early_stopping_restores_the_best_weights_end_to_end(setup):
    model, x, y = setup
    snapshots = {}
    recorder = LambdaCallback(on_epoch_end=lambda e, l: snapshots.setdefault(e, (l["val_loss"],
                                                                                    model.get_weights())))
    stopper = EarlyStopping(patience=50, restore_best_weights=True)
    model.fit(x[:30], y[:30], epochs=4, batch_size=8, verbose=0, validation_data=(x[30:], y[30:]),
              callbacks=[recorder, stopper])
    best = min(snapshots, key=lambda e: snapshots[e][0])
    assert stopper.best_epoch == best
    for restored, kept in zip(model.get_weights(), snapshots[best][1]):
        np.testing.assert_array_equal(restored, kept)


def test_learning_rate_callbacks_end_to_end(setup):
    model, x, y = tiny_classifier(lr=0.1)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: lr / 2)])
    assert history.history["lr"] == pytest.approx([0.05, 0.025, 0.0125])
    assert float(model.optimizer.lr) == pytest.approx(0.0125)
    model, x, y = tiny_classifier(lr=0.1)
    reducer = ReduceLROnPlateau(monitor="val_loss", min_delta=10, patience=1, cooldown=5)
    history = model.fit(x[:30], y[:30], epochs=5, verbose=0, validation_data=(x[30:], y[30:]), callbacks=[reducer])
    assert history.history["lr"] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.01])


def test_lr_zero_freezes_weights(setup):
    model, x, y = tiny_classifier(lr=0.1)
    before = model.get_weights()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[LearningRateScheduler(lambda epoch: 0.0)])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_csv_logger_stopped_in_first_epoch_writes_na(setup, tmp_path):
    model, x, y = setup
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    model.fit(x[:30], y[:30], batch_size=8, epochs=2, verbose=0, validation_data=(x[30:], y[30:]),
              callbacks=[logger])
    model.fit(x[:30], y[:30], batch_size=8, epochs=2, verbose=0, validation_data=(x[30:], y[30:]),
              callbacks=[StopAt("on_batch_end", 0), logger])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,acc,loss,val_acc,val_loss" and len(lines) == 2
    assert lines[1].startswith("0,") and lines[1].endswith(",NA,NA")


def _final_lines(out):
    return [line for line in out.splitlines() if "[==============================]" in line]


def test_progress_bar_final_line_matches_history(setup, capsys):
    model, x, y = setup
    for extra in ([], [TerminateOnNaN()]):  # throttled running means, then every batch dispatched
        history = model.fit(x[:30], y[:30], batch_size=4, epochs=2, verbose=1, validation_data=(x[30:], y[30:]),
                            callbacks=extra)
        out = capsys.readouterr().out
        assert "\r" not in out and "\b" not in out
        assert out.startswith("Train on 30 samples, validate on 10 samples\nEpoch 1/2\n")
        finals = _final_lines(out)
        assert len(finals) == 2
        for epoch, line in enumerate(finals):
            expected = "".join(f" - {key}: {history.history[key][epoch]:.4f}"
                               for key in ("loss", "acc", "val_loss", "val_acc"))
            assert line.startswith("30/30 [") and line.endswith(expected)


def test_user_progbar_logger_is_not_duplicated_and_follows_fit_verbose(setup, capsys):
    model, x, y = setup
    model.fit(x, y, epochs=2, verbose=2, callbacks=[ProgbarLogger()])
    out = capsys.readouterr().out
    assert out.count("Epoch 1/2") == 1 and out.count(" - loss:") == 2
    model.fit(x, y, epochs=2, verbose=0, callbacks=[ProgbarLogger()])
    assert capsys.readouterr().out == ""
    model.fit(x, y, epochs=1, verbose=1, callbacks=[ProgbarLogger(count_mode="steps")])
    assert _final_lines(capsys.readouterr().out)[0].startswith("2/2 [")


def test_evaluate_and_predict_hooks(setup):
    model, x, y = setup
    recorder = Recorder()
    results = model.evaluate(x, y, batch_size=16, verbose=0, callbacks=[recorder])
    assert recorder.names() == [("on_test_begin", None), ("on_test_batch_begin", 0), ("on_test_batch_end", 0),
                                ("on_test_batch_begin", 1), ("on_test_batch_end", 1),
                                ("on_test_batch_begin", 2), ("on_test_batch_end", 2), ("on_test_end", None)]
    assert recorder.events[-1][2] == pytest.approx({"loss": results[0], "acc": results[1]})
    assert recorder.params["metrics"] == ["loss", "acc"]
    recorder = Recorder()
    outputs = []
    collector = LambdaCallback(on_predict_batch_end=lambda b, logs: outputs.append(np.array(logs["outputs"])))
    predicted = model.predict(x, batch_size=16, callbacks=[recorder, collector])
    assert recorder.names("on_predict_begin", "on_predict_end") == [("on_predict_begin", None),
                                                                    ("on_predict_end", None)]
    assert [logs for name, _, logs in recorder.events if name == "on_predict_batch_begin"] == [
        {"batch": 0, "size": 16}, {"batch": 1, "size": 16}, {"batch": 2, "size": 8}]
    np.testing.assert_array_equal(np.concatenate(outputs), predicted)


def test_keras_test_suite_counter_with_wrapped_instance_hooks(setup):
    """Keras' own Counter: skips Callback.__init__ and wraps every hook on the instance."""
    model, x, y = setup
    hooks = EPOCH_HOOKS + INDEXED_HOOKS + ("on_batch_begin", "on_batch_end")

    class Counter(Callback):
        def __init__(self):
            self.method_counts = {}
            for name in hooks:
                setattr(self, name, self.wrap_with_counts(name, getattr(self, name)))

        def wrap_with_counts(self, name, method):
            def call_and_count(*args, **kwargs):
                self.method_counts[name] = self.method_counts.get(name, 0) + 1
                return method(*args, **kwargs)
            return call_and_count

    counter = Counter()
    model.fit(x[:30], y[:30], batch_size=16, epochs=3, verbose=0, validation_data=(x[30:], y[30:]),
              callbacks=[counter])
    model.evaluate(x, y, batch_size=16, verbose=0, callbacks=[counter])
    model.predict(x, batch_size=32, callbacks=[counter])
    assert counter.method_counts == {
        "on_train_begin": 1, "on_train_end": 1, "on_epoch_begin": 3, "on_epoch_end": 3,
        "on_train_batch_begin": 6, "on_train_batch_end": 6, "on_batch_begin": 6, "on_batch_end": 6,
        "on_test_begin": 4, "on_test_end": 4, "on_test_batch_begin": 6, "on_test_batch_end": 6,
        "on_predict_begin": 1, "on_predict_end": 1, "on_predict_batch_begin": 2, "on_predict_batch_end": 2}
