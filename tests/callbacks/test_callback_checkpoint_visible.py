"""A checkpoint is complete when ModelCheckpoint's (or BackupAndRestore's) hook returns, wherever user code can
look at it: a later callback, a user subclass, a direct hook call, a hook of the next epoch, `on_train_end`.

Every test slows the writes down (the Python writer and, where built, the native writer thread), so a file
still being written when the hook returns would show as a missing or older file. Files are read by copying
their bytes (`shutil.copyfile`), as a user uploading them would: fastfit's own readers wait for pending writes.
"""
import json
import os
import shutil
import threading
import time

import h5py
import numpy as np
import pytest

import fastfit
from fastfit.callbacks import (BackupAndRestore, Callback, CSVLogger, EarlyStopping, LambdaCallback,
                               LearningRateScheduler, ModelCheckpoint)
from fastfit.saving import checkpoint_writer, files

from callback_helpers import tiny_classifier


@pytest.fixture(params=["python", "native"])
def slow_writes(request, monkeypatch):
    """Every file write starts 50 ms late: in the Python writer, or (where built) in the native writer thread."""
    original = files.write_snapshot

    def slow(*args, **kwargs):
        time.sleep(0.05)
        return original(*args, **kwargs)
    monkeypatch.setattr(files, "write_snapshot", slow)
    if request.param == "python":
        monkeypatch.setattr(files, "_filewrite", None)
    elif files._filewrite is None:
        pytest.skip("no native writer on this platform")
    else:
        native = files._filewrite.FileWrite

        class SlowStart(native):
            def start(self):
                self.begun = threading.Event()
                threading.Timer(0.05, lambda: (native.start(self), self.begun.set())).start()

            def wait(self):
                self.begun.wait()
                return native.wait(self)
        monkeypatch.setattr(files._filewrite, "FileWrite", SlowStart)


class Copies:
    """Copies the checkpoint file(s) at each call, with the model's weights at that moment."""

    def __init__(self, model, folder, keep):
        self.model, self.folder, self.keep = model, folder, keep
        self.taken = []  # (label, {file name: copy path}, weights)

    def __call__(self, label):
        copies = {}
        for name in sorted(os.listdir(self.folder)):
            if name.endswith(".h5"):
                copy = os.path.join(self.keep, f"{len(self.taken)}-{name}")
                shutil.copyfile(os.path.join(self.folder, name), copy)
                copies[name] = copy
        self.taken.append((label, copies, self.model.get_weights()))


def _weights_in(path, weights_only, engine):
    if weights_only:
        fresh, _, _ = tiny_classifier(engine)
        fresh.load_weights(path)
        return fresh.get_weights()
    return fastfit.models.load_model(path).get_weights()


def _assert_equal(saved, expected):
    assert len(saved) == len(expected)
    for a, b in zip(saved, expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("weights_only", [False, True])
def test_a_lambda_callback_after_the_checkpoint_copies_this_epochs_file(tmp_path, core, slow_writes,
                                                                         weights_only):
    model, x, y = tiny_classifier(core)
    folder, keep = tmp_path / "ck", tmp_path / "copies"
    folder.mkdir()
    keep.mkdir()
    copies = Copies(model, str(folder), str(keep))
    model.fit(x, y, epochs=3, batch_size=8, verbose=0,
              callbacks=[ModelCheckpoint(str(folder / "ck.h5"), save_weights_only=weights_only),
                         LambdaCallback(on_epoch_end=lambda epoch, logs: copies(epoch))])
    assert [label for label, _, _ in copies.taken] == [0, 1, 2]
    for _, files_seen, weights in copies.taken:  # the first epoch included
        assert list(files_seen) == ["ck.h5"]
        _assert_equal(_weights_in(files_seen["ck.h5"], weights_only, core), weights)


@pytest.mark.parametrize("variant", ["template", "period", "best_only", "batches"])
def test_save_variants_are_complete_for_a_later_callback(tmp_path, core, slow_writes, variant):
    model, x, y = tiny_classifier(core)
    folder, keep = tmp_path / "ck", tmp_path / "copies"
    folder.mkdir()
    keep.mkdir()
    copies = Copies(model, str(folder), str(keep))
    losses = []
    options = {"template": dict(filepath="e{epoch:02d}-{loss:.3f}.h5"),
               "period": dict(filepath="ck.h5", period=2),
               "best_only": dict(filepath="ck.h5", save_best_only=True, monitor="loss"),
               "batches": dict(filepath="b{epoch}-{batch}.h5", save_freq=2)}[variant]
    options["filepath"] = str(folder / options["filepath"])
    reader = LambdaCallback(on_epoch_end=lambda epoch, logs: (losses.append(logs["loss"]), copies(epoch)))
    if variant == "batches":
        reader.on_batch_end = lambda batch, logs: copies((len(losses), batch)) if batch % 2 == 1 else None
    model.fit(x, y, epochs=4, batch_size=10, verbose=0, shuffle=False,
              callbacks=[ModelCheckpoint(**options), reader])
    saved_at = {}  # file name -> weights when it was last saved, replayed from the copies' labels
    best = np.inf
    for label, files_seen, weights in copies.taken:
        if variant == "template":
            saved_at[f"e{label + 1:02d}-{losses[label]:.3f}.h5"] = weights
        elif variant == "period" and label % 2 == 1:
            saved_at["ck.h5"] = weights
        elif variant == "best_only" and losses[label] < best:
            best = losses[label]
            saved_at["ck.h5"] = weights
        elif variant == "batches" and isinstance(label, tuple):
            saved_at[f"b{label[0] + 1}-{label[1] + 1}.h5"] = weights
        assert sorted(files_seen) == sorted(saved_at), label
        for name, expected in saved_at.items():
            _assert_equal(_weights_in(files_seen[name], False, core), expected)
    if variant == "period":
        assert [sorted(f) for _, f, _ in copies.taken] == [[], ["ck.h5"], ["ck.h5"], ["ck.h5"]]


def test_user_callbacks_see_the_file_at_the_next_epoch_begin_and_at_train_end(tmp_path, core, slow_writes):
    """Listed before ModelCheckpoint, a callback's next on_epoch_begin and its on_train_end still run after
    the save: the file is the last epoch's there too."""
    model, x, y = tiny_classifier(core)
    folder, keep = tmp_path / "ck", tmp_path / "copies"
    folder.mkdir()
    keep.mkdir()
    copies = Copies(model, str(folder), str(keep))

    class Watcher(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            copies(("begin", epoch))

        def on_train_end(self, logs=None):
            copies(("end",))
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[Watcher(), ModelCheckpoint(str(folder / "ck.h5"))])
    assert [label for label, _, _ in copies.taken] == [("begin", 0), ("begin", 1), ("begin", 2), ("end",)]
    assert copies.taken[0][1] == {}
    for _, files_seen, weights in copies.taken[1:]:  # weights have not changed since the last save
        _assert_equal(_weights_in(files_seen["ck.h5"], False, core), weights)


def test_a_user_subclass_of_model_checkpoint_reads_its_own_file(tmp_path, core, slow_writes):
    model, x, y = tiny_classifier(core)
    path = tmp_path / "ck.h5"
    seen = []

    class Uploading(ModelCheckpoint):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            copy = tmp_path / f"uploaded-{epoch}.h5"
            shutil.copyfile(path, copy)
            seen.append((str(copy), self.model.get_weights()))
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[Uploading(str(path))])
    assert len(seen) == 2
    for copy, weights in seen:
        _assert_equal(_weights_in(copy, False, core), weights)


def test_a_user_subclass_of_a_built_in_listed_after_it_sees_the_file(tmp_path, core, slow_writes):
    model, x, y = tiny_classifier(core)
    path = tmp_path / "ck.h5"
    seen = []

    class Stopper(EarlyStopping):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((path.read_bytes(), self.model.get_weights()))
            super().on_epoch_end(epoch, logs)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0,
              callbacks=[ModelCheckpoint(str(path)), Stopper(monitor="loss", patience=5)])
    for index, (content, weights) in enumerate(seen):
        copy = tmp_path / f"copy-{index}.h5"
        copy.write_bytes(content)
        _assert_equal(_weights_in(str(copy), False, core), weights)


def test_a_direct_hook_call_leaves_the_complete_file(tmp_path, core, slow_writes):
    model, x, y = tiny_classifier(core)
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "ck.h5"
    checkpoint = ModelCheckpoint(str(path))
    checkpoint.set_model(model)
    for epoch in range(3):  # later calls too (a writer's first write was always complete)
        model.fit(x, y, epochs=1, verbose=0)
        checkpoint.on_epoch_end(epoch, {"loss": 1.0})
        copy = tmp_path / f"copy-{epoch}.h5"
        shutil.copyfile(path, copy)
        _assert_equal(_weights_in(str(copy), False, core), model.get_weights())
    assert sorted(os.listdir(tmp_path)) == ["ck.h5", "copy-0.h5", "copy-1.h5", "copy-2.h5"]


def test_a_backup_is_complete_for_a_later_callback(tmp_path, core, slow_writes):
    model, x, y = tiny_classifier(core)
    positions = []

    def read_position(epoch, logs):
        shutil.copyfile(tmp_path / "backup" / "backup.h5", tmp_path / "copy.h5")
        with h5py.File(tmp_path / "copy.h5", "r") as copy:
            positions.append(json.loads(copy.attrs["fastfit_backup"]))
    model.fit(x, y, epochs=3, batch_size=8, verbose=0,
              callbacks=[BackupAndRestore(str(tmp_path / "backup")), LambdaCallback(on_epoch_end=read_position)])
    assert positions == [{"epoch": 1, "batch": 0}, {"epoch": 2, "batch": 0}, {"epoch": 3, "batch": 0}]
    assert os.listdir(tmp_path / "backup") == []  # deleted when the fit completed


@pytest.fixture
def decisions(monkeypatch):
    """Records, for each checkpoint written, whether the writer let it finish after the hook returned."""
    seen = []
    original = checkpoint_writer.CheckpointWriter._write

    def recorded(self, path, content, what, behind, scope):
        seen.append(behind)
        return original(self, path, content, what, behind, scope)
    monkeypatch.setattr(checkpoint_writer.CheckpointWriter, "_write", recorded)
    return seen


def test_with_only_built_ins_listed_checkpoints_may_be_written_behind(tmp_path, core, decisions):
    model, x, y = tiny_classifier(core)
    model.fit(x, y, epochs=3, verbose=1, callbacks=[
        ModelCheckpoint(str(tmp_path / "ck.h5")), EarlyStopping(monitor="loss", patience=9),
        CSVLogger(str(tmp_path / "log.csv")), BackupAndRestore(str(tmp_path / "backup"))])
    # per epoch: the checkpoint, then the backup; the first write of each writer in a fit is complete at once
    assert decisions == [False, False, True, True, True, True]


def _user_callbacks(tmp_path):
    replaced = EarlyStopping(monitor="loss")
    replaced.on_epoch_end = lambda epoch, logs: None  # a hook replaced on a built-in instance is user code

    class Subclass(CSVLogger):
        pass
    return {"lambda before": ([LambdaCallback(on_epoch_end=lambda e, l: None)], 0),
            "lambda after": ([LambdaCallback(on_epoch_end=lambda e, l: None)], 1),
            "user subclass": ([Subclass(str(tmp_path / "log.csv"))], 1),
            "replaced hook": ([replaced], 1),
            "schedule": ([LearningRateScheduler(lambda epoch: 0.01)], 1)}  # the schedule is user code


@pytest.mark.parametrize("case", ["lambda before", "lambda after", "user subclass", "replaced hook", "schedule"])
def test_any_user_code_in_the_list_makes_every_checkpoint_complete_on_return(tmp_path, core, decisions, case):
    model, x, y = tiny_classifier(core)
    extra, where = _user_callbacks(tmp_path)[case]
    callbacks = [ModelCheckpoint(str(tmp_path / "ck.h5"))]
    callbacks[where:where] = extra
    model.fit(x, y, epochs=3, verbose=0, callbacks=callbacks)
    assert decisions == [False, False, False]


def test_the_rule_looks_at_the_exact_class_and_the_instance():
    def hook(epoch, logs):
        return None
    assert checkpoint_writer._runs_no_user_code(EarlyStopping())
    assert not checkpoint_writer._runs_no_user_code(LambdaCallback(on_epoch_end=hook))
    assert not checkpoint_writer._runs_no_user_code(Callback())
    assert not checkpoint_writer._runs_no_user_code(type("Mine", (EarlyStopping,), {})())
    stopper = EarlyStopping()
    stopper.on_epoch_end = hook
    assert not checkpoint_writer._runs_no_user_code(stopper)


def test_a_custom_metric_makes_every_checkpoint_complete_on_return(tmp_path, core, decisions):
    # A custom metric is user code that runs at every batch end of the fit: it could read the file too.
    def mean_prediction(y_true, y_pred):
        return y_pred.mean(axis=-1)
    model, x, y = tiny_classifier(core)
    model.compile(optimizer="sgd", loss=model.loss, metrics=[mean_prediction], engine=core)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[ModelCheckpoint(str(tmp_path / "ck.h5"))])
    assert decisions == [False, False, False]
