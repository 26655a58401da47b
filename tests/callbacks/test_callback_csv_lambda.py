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
    handle = open(path, "w", buffering=1)
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


def _tiny_fit(callbacks, epochs=2, seed=0):
    from fastfit.layers import Dense
    from fastfit.models import Sequential
    from fastfit.utils import set_random_seed
    set_random_seed(seed)
    model = Sequential([Dense(2, input_dim=3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    x = np.random.default_rng(seed).random((8, 3))
    y = np.eye(2)[np.arange(8) % 2]
    return model.fit(x, y, epochs=epochs, batch_size=4, verbose=0, callbacks=callbacks)


def test_csv_rows_are_appended_and_flushed_but_not_fsynced(tmp_path, monkeypatch):
    """A log is not worth a disk flush per epoch: rows are appended to the open file, without fsync."""
    import os
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "log.csv"
    _tiny_fit([CSVLogger(str(path))])
    assert synced == []
    assert path.read_text().splitlines()[0] == "epoch,loss"
    assert len(path.read_text().splitlines()) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]  # no temporary file


def test_csv_row_is_one_write_then_flush_and_opens_lazily(tmp_path):
    class Recorder:
        def __init__(self, handle):
            self.handle, self.calls = handle, []

        def write(self, text):
            self.calls.append(("write", text))
            return self.handle.write(text)

        def flush(self):
            self.calls.append(("flush",))
            self.handle.flush()

        def close(self):
            self.handle.close()

    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.on_epoch_end(0, {"loss": 1.0})  # no on_train_begin: opens the file itself
    recorder = logger._file = Recorder(logger._file)
    logger.on_epoch_end(1, {"loss": 0.5})
    assert recorder.calls == [("write", "1,0.5\r\n"), ("flush",)]
    logger.on_train_end()
    assert logger._file is None and recorder.handle.closed
    assert read_rows(path) == [["epoch", "loss"], ["0", "1.0"], ["1", "0.5"]]


def test_csv_rows_are_on_disk_while_training_continues(tmp_path):
    path = tmp_path / "log.csv"
    seen = {}

    def peek(epoch, logs):
        with open(path, newline="") as other:  # another handle than the logger's
            seen[epoch] = other.read()

    _tiny_fit([CSVLogger(path), LambdaCallback(on_epoch_begin=peek)], epochs=3)
    assert seen[0] == ""  # truncated at train begin, nothing written yet
    assert [len(seen[e].splitlines()) for e in (1, 2)] == [2, 3]  # header + one row per finished epoch
    assert seen[1].startswith("epoch,loss\r\n0,") and seen[2].endswith("\r\n")
    assert path.read_bytes().decode().startswith(seen[2])


def test_csv_append_across_two_fits_writes_one_header(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path, append=True)
    _tiny_fit([logger], epochs=2)
    _tiny_fit([logger], epochs=1)
    _tiny_fit([CSVLogger(path, append=True)], epochs=1)
    rows = read_rows(path)
    assert rows[0] == ["epoch", "loss"] and [row[0] for row in rows[1:]] == ["0", "1", "0", "0"]
    assert all(len(row) == 2 for row in rows)


def test_csv_append_to_existing_empty_file_writes_header(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("")
    _tiny_fit([CSVLogger(path, append=True)], epochs=2)
    rows = read_rows(path)
    assert rows[0] == ["epoch", "loss"] and [row[0] for row in rows[1:]] == ["0", "1"]


def test_csv_file_closed_after_fit(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    handles = []
    _tiny_fit([logger, LambdaCallback(on_epoch_end=lambda epoch, logs: handles.append(logger._file))])
    assert logger._file is None
    assert len(handles) == 2 and handles[0] is handles[1] and handles[0].closed


def test_csv_file_closed_when_fit_raises_and_rows_are_whole(tmp_path):
    import gc
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    handles = []

    def fail(epoch, logs):
        handles.append(logger._file)  # noqa: F821 (`logger` is deleted below, after `fail` is)
        if epoch == 1:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here") as excinfo:
        _tiny_fit([logger, LambdaCallback(on_epoch_end=fail)], epochs=4)
    text = path.read_bytes().decode()
    assert text.endswith("\r\n") and text.count("\r\n") == 3  # header, epochs 0 and 1
    rows = read_rows(path)
    assert [row[0] for row in rows] == ["epoch", "0", "1"] and all(len(row) == 2 for row in rows)
    handle = handles[0]
    assert not handle.closed  # no on_train_end when fit raises (as in Keras) ...
    del excinfo, fail, logger
    handles.clear()
    gc.collect()
    assert handle.closed  # ... but the logger closes its file when it goes away
