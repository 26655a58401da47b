"""fastfit.utils.plot_history: PNG of the training curves from a History, a dict or a CSVLogger file."""
import sys

import numpy as np
import pytest

from fastfit.callbacks import CSVLogger, History
from fastfit.utils import plotting

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HISTORY = {"loss": [1.0, 0.6, 0.4], "acc": [0.5, 0.7, 0.8], "val_loss": [1.1, 0.7, 0.5],
           "val_acc": [0.4, 0.6, 0.75]}


def _png_size(path):
    image = pytest.importorskip("matplotlib.image").imread(path)
    return image.shape


def test_plot_from_dict(tmp_path):
    pytest.importorskip("matplotlib")
    out = plotting.plot_history(HISTORY, tmp_path / "curves.png")
    assert out == str(tmp_path / "curves.png")
    assert open(out, "rb").read(8) == PNG_SIGNATURE
    height, width, _ = _png_size(out)
    assert width > height  # two panels side by side


def test_plot_from_history_object_via_utils(tmp_path):
    pytest.importorskip("matplotlib")
    import fastfit.utils

    history = History()
    history.on_train_begin()
    for epoch in range(3):
        history.on_epoch_end(epoch, {key: values[epoch] for key, values in HISTORY.items()})
    out = fastfit.utils.plot_history(history, tmp_path / "h.png")
    assert open(out, "rb").read(8) == PNG_SIGNATURE


@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_plot_from_csv_logger_file(tmp_path, separator):
    pytest.importorskip("matplotlib")
    path = tmp_path / "log.csv"
    logger = CSVLogger(path, separator=separator)
    logger.on_train_begin()
    for epoch in range(3):
        logger.on_epoch_end(epoch, {key: values[epoch] for key, values in HISTORY.items()})
    logger.on_train_end()
    epochs, history = plotting.read_csv_log(str(path))
    assert epochs == [0, 1, 2]
    assert history == HISTORY
    out = plotting.plot_history(path, tmp_path / "csv.png")
    assert open(out, "rb").read(8) == PNG_SIGNATURE


def test_csv_na_cells_become_nan(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss,val_loss\n0,1.5,NA\n1,1.0,0.9\n")
    epochs, history = plotting.read_csv_log(str(path))
    assert epochs == [0, 1] and history["loss"] == [1.5, 1.0]
    assert np.isnan(history["val_loss"][0]) and history["val_loss"][1] == 0.9


def test_panels_loss_first_then_metrics_then_lr():
    keys = {"acc": [1], "val_acc": [1], "lr": [1], "val_loss": [1], "loss": [1], "val_mae": [1]}
    assert plotting._panels(keys) == ["loss", "acc", "lr", "mae"]


def test_single_panel_with_lr_log_scale(tmp_path):
    pytest.importorskip("matplotlib")
    out = plotting.plot_history({"loss": [2.0, 1.0]}, tmp_path / "one.png")
    height, width, _ = _png_size(out)
    assert width < 2 * height
    assert plotting.plot_history({"loss": [2.0, 1.0], "lr": [0.1, 0.01]}, tmp_path / "lr.png")


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"fastfit\[plot\]"):
        plotting.plot_history(HISTORY, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_bad_inputs(tmp_path):
    with pytest.raises(TypeError, match="history_or_csv_path"):
        plotting.plot_history(42, tmp_path / "x.png")
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        plotting.plot_history(tmp_path / "missing.csv", tmp_path / "x.png")
    with pytest.raises(ValueError, match="empty"):
        plotting.plot_history({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="lengths"):
        plotting.plot_history({"loss": [1, 2], "val_loss": [1]}, tmp_path / "x.png")
    no_epoch = tmp_path / "other.csv"
    no_epoch.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no `epoch` column"):
        plotting.plot_history(no_epoch, tmp_path / "x.png")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        plotting.plot_history(empty, tmp_path / "x.png")
