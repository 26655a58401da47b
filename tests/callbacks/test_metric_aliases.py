"""Every spelling Keras accepts for a metric (`acc`/`accuracy`, `mse`/`mean_squared_error`, ...) names it
wherever a user names a metric: monitors, filepath fields, history, logs, metrics_names."""
import csv
import pickle
import warnings

import numpy as np
import pytest

import fastfit
from fastfit import callbacks
from fastfit.engine.logs import Logs, MetricNames, aliases, lookup


def _model(engine, metrics, units=3, loss="categorical_crossentropy"):
    model = fastfit.models.Sequential([fastfit.layers.Dense(units, activation="softmax", input_shape=(8,))])
    model.compile(optimizer=fastfit.optimizers.SGD(lr=0.1), loss=loss, metrics=metrics, engine=engine)
    return model


def _fit(model, data, epochs=3, cbks=(), **kwargs):
    x, y, _ = data
    return model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, validation_split=0.25, shuffle=False,
                     callbacks=list(cbks), **kwargs)


# -- the mapping ------------------------------------------------------------------------------------------------

def test_aliases_cover_keras_spellings():
    assert aliases("acc") == ("accuracy",) and aliases("val_accuracy") == ("val_acc",)
    assert set(aliases("mse")) == {"MSE", "mean_squared_error"}
    assert "val_mae" in aliases("val_mean_absolute_error")
    assert aliases("crossentropy") == ("ce",) and "cosine" in aliases("cosine_proximity")
    assert aliases("loss") == () and aliases("val_loss") == () and aliases(3) == ()


def test_logs_answer_every_alias_and_iterate_stored_keys_once():
    logs = Logs({"loss": 0.5, "val_accuracy": 0.75})
    assert logs["val_acc"] == 0.75 and "val_acc" in logs and logs.get("val_acc") == 0.75
    assert logs.get("val_ce") is None and "acc" not in logs
    assert "{val_acc:.2f}".format_map(logs) == "0.75"
    logs["val_acc"] = 0.8  # writes the stored key
    assert list(logs) == ["loss", "val_accuracy"] and len(logs) == 2 and logs["val_accuracy"] == 0.8
    logs.update(val_acc=0.9)
    assert dict(logs) == {"loss": 0.5, "val_accuracy": 0.9}
    assert logs.pop("val_acc") == 0.9 and list(logs) == ["loss"]
    with pytest.raises(KeyError, match="val_acc"):
        logs["val_acc"]
    assert pickle.loads(pickle.dumps(Logs(acc=1.0)))["accuracy"] == 1.0
    assert lookup({"val_accuracy": 1.0}, "val_acc") == 1.0 and lookup(None, "x", 2) == 2


def test_metric_names_index_by_alias():
    names = MetricNames(["loss", "accuracy", "mse"])
    assert names == ["loss", "accuracy", "mse"]
    assert names.index("acc") == 1 and names.index("mean_squared_error") == 2 and "acc" in names
    assert names.count("acc") == 1
    with pytest.raises(ValueError, match="'ce'"):
        names.index("ce")


# -- fit: stored keys -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling, other", [("accuracy", "acc"), ("acc", "accuracy")])
def test_history_stores_the_users_spelling_and_answers_the_other(core, classification_data, spelling, other):
    model = _model(core, [spelling, "mse"])
    history = _fit(model, classification_data)
    assert list(history.history) == ["loss", spelling, "mse", "val_loss", "val_" + spelling, "val_mse"]
    assert history.history["val_" + other] == history.history["val_" + spelling]
    assert history.history["mean_squared_error"] == history.history["mse"]
    assert model.metrics_names == ["loss", spelling, "mse"]
    assert model.metrics_names.index(other) == 1


@pytest.mark.parametrize("spelling, monitor", [("accuracy", "val_acc"), ("acc", "val_accuracy")])
def test_checkpoint_save_best_only_with_the_other_spelling(core, classification_data, tmp_path, spelling,
                                                           monitor):
    model = _model(core, [spelling])
    path = tmp_path / ("w.{epoch:02d}-{" + monitor + ":.2f}.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "only with ... available" warning
        history = _fit(model, classification_data, cbks=[callbacks.ModelCheckpoint(
            str(path), monitor=monitor, save_best_only=True, save_weights_only=True, mode="max")])
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written, "save_best_only never wrote a file"
    first = history.history[monitor][0]
    assert written[0] == f"w.01-{first:.2f}.h5"


def test_checkpoint_messages_use_the_users_spelling(core, classification_data, tmp_path, capsys):
    model = _model(core, ["accuracy"])
    _fit(model, classification_data, epochs=2, cbks=[callbacks.ModelCheckpoint(
        str(tmp_path / "w.h5"), monitor="val_acc", save_best_only=True, save_weights_only=True, verbose=1)])
    out = capsys.readouterr().out
    assert "val_acc improved from -inf" in out and "val_accuracy" not in out


def test_early_stopping_on_the_other_spelling_stops(core, classification_data):
    model = _model(core, ["accuracy"])
    stopper = callbacks.EarlyStopping(monitor="val_acc", patience=0, min_delta=2.0)  # nothing improves by 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        history = _fit(model, classification_data, epochs=20, cbks=[stopper])
    assert len(history.epoch) == 2 and stopper.stopped_epoch == 1


def test_reduce_lr_on_the_other_spelling_reduces(core, classification_data):
    model = _model(core, ["acc"])
    reducer = callbacks.ReduceLROnPlateau(monitor="val_accuracy", patience=1, factor=0.5, min_delta=2.0,
                                          mode="max")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        history = _fit(model, classification_data, epochs=4, cbks=[reducer])
    assert history.history["lr"][-1] < history.history["lr"][0]


def test_unknown_monitor_still_warns(core, classification_data):
    model = _model(core, ["accuracy"])
    with pytest.warns(RuntimeWarning, match="val_ce.*Available metrics are: loss,accuracy,val_loss,val_accuracy"):
        _fit(model, classification_data, epochs=1, cbks=[callbacks.EarlyStopping(monitor="val_ce")])


def test_callback_logs_answer_aliases_and_csv_uses_the_users_spelling(core, classification_data, tmp_path):
    seen = []

    class Probe(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((logs["val_acc"], "val_acc" in logs, "{acc:.3f}".format_map(logs), sorted(logs)))

        def on_train_batch_end(self, batch, logs=None):
            assert logs["mean_squared_error"] == logs["mse"]

    model = _model(core, ["accuracy", "mse"])
    history = _fit(model, classification_data, epochs=2,
                   cbks=[Probe(), callbacks.CSVLogger(str(tmp_path / "log.csv"))])
    value, present, text, keys = seen[0]
    assert value == history.history["val_accuracy"][0] and present
    assert text == f"{history.history['accuracy'][0]:.3f}"
    assert keys == ["accuracy", "loss", "mse", "val_accuracy", "val_loss", "val_mse"]
    with open(tmp_path / "log.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["epoch", "accuracy", "loss", "mse", "val_accuracy", "val_loss", "val_mse"]


def test_evaluate_order_follows_metrics_names(core, classification_data):
    model = _model(core, ["acc"])
    x, y, _ = classification_data
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc == model.evaluate(x, y, verbose=0)[model.metrics_names.index("accuracy")]
    assert np.isfinite(loss)


def test_stateful_metrics_arguments_accept_aliases():
    assert {"acc", "accuracy"} <= callbacks.ProgbarLogger(stateful_metrics=["acc"]).stateful_metrics
    logger = callbacks.BaseLogger(stateful_metrics=["acc"])
    logger.set_params({"metrics": ["loss", "accuracy"]})
    logger.on_epoch_begin(0)
    logger.on_batch_end(0, {"batch": 0, "size": 2, "loss": 1.0, "accuracy": 0.25})
    logger.on_batch_end(1, {"batch": 1, "size": 2, "loss": 3.0, "accuracy": 0.75})
    logs = {}
    logger.on_epoch_end(0, logs)
    assert logs == {"loss": 2.0, "accuracy": 0.75}  # the last value, not the mean
