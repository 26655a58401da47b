"""ModelCheckpoint on a duck-typed model: file names, best-only logic, period, save_freq, messages, errors."""
import os

import pytest

from fastfit.callbacks import CallbackList, ModelCheckpoint

from callback_helpers import FakeModel, run_epochs


def test_saves_every_epoch_with_formatted_names(tmp_path):
    model = FakeModel()
    pattern = str(tmp_path / "weights.{epoch:02d}-{val_loss:.2f}.hdf5")
    run_epochs([ModelCheckpoint(pattern)], model, [0.5, 0.25, 0.125])
    assert [kind for kind, _ in model.saved] == ["model"] * 3
    assert sorted(os.listdir(tmp_path)) == ["weights.01-0.50.hdf5", "weights.02-0.25.hdf5", "weights.03-0.12.hdf5"]


def test_save_weights_only_and_missing_folder_is_created(tmp_path):
    model = FakeModel()
    path = tmp_path / "new" / "deeper" / "w.h5"
    run_epochs([ModelCheckpoint(path, save_weights_only=True)], model, [1.0])
    assert model.saved == [("weights", str(path))] and path.exists()


def test_save_best_only_messages_and_decisions(tmp_path, capsys):
    model = FakeModel()
    path = str(tmp_path / "best.h5")
    checkpoint = ModelCheckpoint(path, verbose=1, save_best_only=True)
    run_epochs([checkpoint], model, [0.69315, 0.7, 0.5])
    assert len(model.saved) == 2 and checkpoint.best == 0.5
    out = capsys.readouterr().out
    assert f"\nEpoch 00001: val_loss improved from inf to 0.69315, saving model to {path}" in out
    assert "\nEpoch 00002: val_loss did not improve from 0.69315" in out
    assert "\nEpoch 00003: val_loss improved from 0.69315 to 0.50000" in out
    # best persists on the instance across runs (Keras 2 behaviour)
    run_epochs([checkpoint], model, [0.6])
    assert len(model.saved) == 2


def test_max_mode_for_accuracy_and_explicit_min(tmp_path):
    model = FakeModel()
    run_epochs([ModelCheckpoint(str(tmp_path / "a.h5"), monitor="val_acc", save_best_only=True)], model,
               [0.5, 0.4, 0.6], key="val_acc")
    assert len(model.saved) == 2
    model = FakeModel()
    run_epochs([ModelCheckpoint(str(tmp_path / "b.h5"), monitor="val_acc", mode="min", save_best_only=True)],
               model, [0.5, 0.4, 0.6], key="val_acc")
    assert len(model.saved) == 2


def test_verbose_plain_save_message(tmp_path, capsys):
    path = str(tmp_path / "m.h5")
    run_epochs([ModelCheckpoint(path, verbose=1)], FakeModel(), [1.0, 2.0, 3.0])
    assert f"\nEpoch 00003: saving model to {path}" in capsys.readouterr().out


def test_period_counts_epochs_since_last_check(tmp_path):
    model = FakeModel()
    run_epochs([ModelCheckpoint(str(tmp_path / "e{epoch}.h5"), period=2)], model, [1.0] * 5)
    assert sorted(os.listdir(tmp_path)) == ["e2.h5", "e4.h5"]


def test_save_freq_in_batches(tmp_path):
    model = FakeModel()
    checkpoint = ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}-{loss:.1f}.h5"), save_freq=2)
    assert checkpoint.batch_hooks_needed("train") == (False, True)
    cbks = CallbackList([checkpoint])
    cbks.set_model(model)
    cbks.on_train_begin({})
    for epoch in range(2):
        cbks.on_epoch_begin(epoch, {})
        for batch in range(3):
            cbks.on_train_batch_end(batch, {"batch": batch, "size": 4, "loss": 0.5})
        cbks.on_epoch_end(epoch, {"loss": 0.5})
    assert sorted(os.listdir(tmp_path)) == ["e1-b2-0.5.h5", "e2-b1-0.5.h5", "e2-b3-0.5.h5"]


def test_missing_placeholder_key_error_names_key_and_filepath(tmp_path):
    pattern = str(tmp_path / "w-{val_loss:.2f}.h5")
    with pytest.raises(KeyError) as info:
        run_epochs([ModelCheckpoint(pattern)], FakeModel(), [1.0], key="loss")
    assert "val_loss" in str(info.value) and pattern in str(info.value)


def test_missing_monitor_with_best_only_warns_every_epoch(tmp_path):
    model = FakeModel()
    with pytest.warns(RuntimeWarning, match="val_loss available, skipping.*loss") as record:
        run_epochs([ModelCheckpoint(str(tmp_path / "m.h5"), save_best_only=True)], model, [None, None])
    assert len([w for w in record if issubclass(w.category, RuntimeWarning)]) == 2
    assert model.saved == []


@pytest.mark.parametrize("kwargs, error, fragment", [
    (dict(mode="best"), ValueError, "'best'"),
    (dict(period=0), ValueError, "period"),
    (dict(save_freq="batch"), ValueError, "save_freq"),
    (dict(save_freq=0), ValueError, "save_freq"),
    (dict(monitor=None), TypeError, "monitor"),
])
def test_bad_arguments(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        ModelCheckpoint("m.h5", **kwargs)
    with pytest.raises(TypeError, match="filepath"):
        ModelCheckpoint(None)
