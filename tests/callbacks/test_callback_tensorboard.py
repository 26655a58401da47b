"""TensorBoard: event files written with the tensorboard package's writer, read back with its loader."""
import glob
import sys

import numpy as np
import pytest

from fastfit.callbacks import CallbackList, TensorBoard

from callback_helpers import FakeModel, run_epochs


def read_events(log_dir):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    files = glob.glob(f"{log_dir}/events.out.tfevents.*")
    assert len(files) == 1
    scalars, histograms = {}, {}
    for event in LegacyEventFileLoader(files[0]).Load():
        for value in event.summary.value:
            if value.HasField("histo"):
                histograms.setdefault(value.tag, []).append((event.step, value.histo))
            else:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars, histograms


class _Layer:
    name = "dense_1"

    def get_weights(self):
        return [np.arange(6.0).reshape(2, 3), np.ones(3)]


def test_epoch_scalars_with_plain_tags(tmp_path):
    pytest.importorskip("tensorboard")
    log_dir = tmp_path / "logs" / "run"
    run_epochs([TensorBoard(log_dir=log_dir)], FakeModel(), [0.5, 0.25], extra={"acc": 0.75, "lr": 0.1})
    scalars, histograms = read_events(log_dir)
    assert set(scalars) == {"loss", "val_loss", "acc", "lr"} and histograms == {}
    assert scalars["val_loss"] == [(0, 0.5), (1, 0.25)]


def test_batch_scalars_prefixed_at_samples_seen(tmp_path):
    pytest.importorskip("tensorboard")
    board = TensorBoard(log_dir=tmp_path, update_freq=10)
    assert board.batch_hooks_needed("train") == (False, True)
    assert TensorBoard(log_dir=tmp_path).batch_hooks_needed("train") == (False, False)
    cbks = CallbackList([board])
    cbks.set_model(FakeModel())
    cbks.on_train_begin({})
    for epoch in range(2):
        for batch in range(3):
            cbks.on_train_batch_end(batch, {"batch": batch, "size": 4, "loss": float(batch)})
        cbks.on_epoch_end(epoch, {"loss": 1.0})
    cbks.on_train_end({})
    scalars, _ = read_events(tmp_path)
    assert scalars["batch_loss"] == [(12, 2.0), (24, 2.0)]
    assert scalars["loss"] == [(0, 1.0), (1, 1.0)]
    assert "batch_batch" not in scalars and "batch_size" not in scalars


def test_update_freq_batch_writes_every_batch(tmp_path):
    pytest.importorskip("tensorboard")
    board = TensorBoard(log_dir=tmp_path, update_freq="batch")
    cbks = CallbackList([board])
    cbks.on_train_begin({})
    for batch in range(3):
        cbks.on_train_batch_end(batch, {"batch": batch, "size": 2, "loss": 0.5, "acc": 1.0})
    cbks.on_train_end({})
    scalars, _ = read_events(tmp_path)
    assert [step for step, _ in scalars["batch_acc"]] == [2, 4, 6]


def test_weight_histograms(tmp_path):
    pytest.importorskip("tensorboard")
    model = FakeModel()
    model.layers = [_Layer()]
    run_epochs([TensorBoard(log_dir=tmp_path, histogram_freq=2)], model, [0.5, 0.4, 0.3])
    _, histograms = read_events(tmp_path)
    assert set(histograms) == {"dense_1/kernel_0", "dense_1/bias_0"}
    steps = [step for step, _ in histograms["dense_1/kernel_0"]]
    assert steps == [0, 2]
    kernel = histograms["dense_1/kernel_0"][0][1]
    assert kernel.num == 6 and kernel.min == 0 and kernel.max == 5 and sum(kernel.bucket) == 6


def test_unsupported_features_raise_and_bad_arguments(tmp_path):
    pytest.importorskip("tensorboard")
    with pytest.raises(ValueError, match="write_grads, write_images, embeddings_freq"):
        TensorBoard(log_dir=tmp_path, write_grads=True, write_images=True, embeddings_freq=1)
    with pytest.raises(ValueError, match="write_images"):
        TensorBoard(log_dir=tmp_path, write_images=True)
    TensorBoard(log_dir=tmp_path, write_grads=False, write_images=False, embeddings_freq=0, write_graph=True)
    with pytest.raises(ValueError, match="update_freq"):
        TensorBoard(log_dir=tmp_path, update_freq="often")
    with pytest.raises(ValueError, match="histogram_freq"):
        TensorBoard(log_dir=tmp_path, histogram_freq=-1)


def test_missing_package_names_the_extra(monkeypatch, tmp_path):
    for name in list(sys.modules):
        if name == "tensorboard" or name.startswith("tensorboard."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # makes `import tensorboard...` fail
    with pytest.raises(ImportError, match=r"fastfit\[tensorboard\]"):
        TensorBoard(log_dir=tmp_path)
