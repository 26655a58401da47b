"""CSVLogger (header, append, NA, separators, iterables) and LambdaCallback."""
import csv
import json

import numpy as np
import pytest

from fastfit.callbacks import CallbackList, CSVLogger, LambdaCallback

from callback_helpers import FakeModel, run_epochs


def read_rows(path, delimiter=","):
    with open(path, newline="") as handle:
        return list(csv.reader(handle, delimiter=delimiter))


def test_header_sorted_and_rows_zero_based(tmp_path):
    path = tmp_path / "log.csv"
    run_epochs([CSVLogger(path)], FakeModel(), [0.5, 0.25], extra={"acc": 0.75})
    assert read_rows(path) == [["epoch", "acc", "loss", "val_loss"], ["0", "0.75", "1.0", "0.5"],
                               ["1", "0.75", "1.0", "0.25"]]


def test_append_writes_no_second_header_and_overwrite_truncates(tmp_path):
    path = tmp_path / "log.csv"
    run_epochs([CSVLogger(path)], FakeModel(), [0.5])
    run_epochs([CSVLogger(path, append=True)], FakeModel(), [0.4, 0.3])
    rows = read_rows(path)
    assert rows[0] == ["epoch", "loss", "val_loss"] and len(rows) == 4 and rows[1:] == [
        ["0", "1.0", "0.5"], ["0", "1.0", "0.4"], ["1", "1.0", "0.3"]]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    run_epochs([CSVLogger(empty, append=True)], FakeModel(), [0.5])
    assert read_rows(empty)[0] == ["epoch", "loss", "val_loss"]
    run_epochs([CSVLogger(path)], FakeModel(), [0.9])
    assert len(read_rows(path)) == 2


def test_missing_keys_are_na_and_late_keys_dropped(tmp_path):
    path = tmp_path / "log.csv"
    run_epochs([CSVLogger(path)], FakeModel(), [0.5, None, 0.3], extra={})
    logger = CSVLogger(tmp_path / "late.csv")
    cbks = CallbackList([logger])
    cbks.set_model(FakeModel())
    cbks.on_train_begin({})
    cbks.on_epoch_end(0, {"loss": 1.0})
    cbks.on_epoch_end(1, {"loss": 0.5, "val_loss": 0.1})
    cbks.on_train_end({})
    assert read_rows(path)[2] == ["1", "1.0", "NA"]
    assert read_rows(tmp_path / "late.csv") == [["epoch", "loss"], ["0", "1.0"], ["1", "0.5"]]


def test_each_row_is_on_disk_and_no_temp_file_is_left(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    cbks = CallbackList([logger])
    cbks.on_train_begin({})
    cbks.on_epoch_end(0, {"loss": 1.0})
    assert read_rows(path) == [["epoch", "loss"], ["0", "1.0"]]  # readable before training ends
    cbks.on_epoch_end(1, {"loss": 0.5})
    cbks.on_train_end({})
    assert read_rows(path)[-1] == ["1", "0.5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


def test_separator_iterables_and_strings(tmp_path):
    path = tmp_path / "log.tsv"
    logs = {"vec": np.array([1.0, 2.0]), "name": "a;b", "scalar": np.float32(0.5), "zero_d": np.array(3.0)}
    run_epochs([CSVLogger(path, separator=";")], FakeModel(), [0.5], extra=logs)
    header, row = read_rows(path, ";")
    values = dict(zip(header, row))
    assert values["vec"] == "[1.0, 2.0]" and values["name"] == "a;b"
    assert values["scalar"] == "0.5" and values["zero_d"] == "3.0"
    assert '"""' not in path.read_text()


def test_csv_bad_arguments():
    with pytest.raises(TypeError, match="separator"):
        CSVLogger("x.csv", separator=",,")
    with pytest.raises(TypeError, match="filename"):
        CSVLogger(3.5)


def test_lambda_positional_calls_and_json_logging(tmp_path):
    path = tmp_path / "log.json"
    handle = open(path, "wt", buffering=1)
    events = []
    callback = LambdaCallback(
        on_epoch_begin=lambda epoch, l: events.append(("epoch_begin", epoch)),
        on_epoch_end=lambda epoch, logs: handle.write(json.dumps(dict(epoch=epoch, **logs)) + "\n"),
        on_batch_begin=lambda b, l: events.append(("batch_begin", b)),
        on_batch_end=lambda b, l: events.append(("batch_end", b, l["loss"])),
        on_train_begin=lambda l: events.append("train_begin"),
        on_train_end=lambda logs: handle.close(),
        on_test_end=lambda logs: events.append(("test_end", logs)))
    cbks = CallbackList([callback])
    cbks.on_train_begin({})
    cbks.on_epoch_begin(0, {})
    cbks.on_batch_begin(0, {"batch": 0, "size": 1})
    cbks.on_train_batch_end(0, {"batch": 0, "size": 1, "loss": 0.5})
    cbks.on_test_end({"loss": 0.3})
    cbks.on_epoch_end(0, {"loss": 0.5})
    cbks.on_train_end({})
    assert events == ["train_begin", ("epoch_begin", 0), ("batch_begin", 0), ("batch_end", 0, 0.5),
                      ("test_end", {"loss": 0.3})]
    assert json.loads(path.read_text()) == {"epoch": 0, "loss": 0.5}


def test_lambda_bad_arguments():
    with pytest.raises(TypeError, match="on_epoch_end"):
        LambdaCallback(on_epoch_end=3)
    with pytest.raises(TypeError, match="on_epoch_ends"):
        LambdaCallback(on_epoch_ends=print)


def test_csv_rows_are_atomic_but_not_fsynced(tmp_path, monkeypatch):
    """A log is not worth a disk flush per epoch: rows go through a renamed temporary file, without fsync."""
    import os
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    from fastfit.callbacks import CSVLogger
    from fastfit.models import Sequential
    from fastfit.layers import Dense
    model = Sequential([Dense(2, input_dim=3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    x = np.random.default_rng(0).random((8, 3))
    y = np.eye(2)[np.arange(8) % 2]
    path = tmp_path / "log.csv"
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[CSVLogger(str(path))])
    assert synced == []
    assert path.read_text().splitlines()[0] == "epoch,loss"
    assert len(path.read_text().splitlines()) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]  # no temporary file left
