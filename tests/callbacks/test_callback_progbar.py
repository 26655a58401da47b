"""Progbar text format (Keras 2), terminal vs plain output, and ProgbarLogger driven directly."""
import io
import sys

import pytest

from fastfit.callbacks import CallbackList, ProgbarLogger
from fastfit.utils.progbar import Progbar, format_eta, format_per_unit, format_value

from callback_helpers import FakeModel


def test_number_formats():
    assert format_value(0.69314) == " 0.6931"
    assert format_value(0.0005) == " 5.0000e-04"
    assert format_value(-2.5) == " -2.5000"
    assert format_value("text") == " text"
    assert [format_eta(s) for s in (5, 61, 3601, 7322)] == ["5s", "1:01", "1:00:01", "2:02:02"]
    assert format_per_unit(2.0) == " 2s/step"
    assert format_per_unit(0.052) == " 52ms/step"
    assert format_per_unit(52e-6) == " 52us/step"


def test_finished_and_unfinished_lines_plain_output(capsys):
    bar = Progbar(target=40)
    bar.update(10, [("loss", 1.0)], force=True)
    bar.update(20, [("loss", 3.0)], force=True)  # values averaged, weighted by progress
    bar.update(40, [("loss", 2.0)])
    out = capsys.readouterr().out
    assert "\r" not in out and "\b" not in out
    first, second, last = out.splitlines()
    assert first.startswith("10/40 [======>.......................] - ETA: ") and first.endswith(" - loss: 1.0000")
    assert second.endswith(" - loss: 2.0000")
    assert last.startswith("40/40 [==============================] - 0s ")
    assert last.endswith("s/step - loss: 2.0000")
    assert out.endswith("\n")


def test_digits_padding_and_unknown_target(capsys):
    Progbar(target=100).update(5, force=True)
    Progbar(target=None).update(10, force=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("  5/100 [>.....")
    assert lines[1].startswith("     10/Unknown")


def test_updates_closer_than_interval_are_skipped_but_counted(capsys):
    bar = Progbar(target=10, interval=3600)
    bar.update(1, [("loss", 1.0)], force=True)
    bar.update(2, [("loss", 3.0)])  # skipped: too soon
    bar.update(10, [("loss", 5.0)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].endswith("loss: 4.4000")  # (1*1 + 3*1 + 5*8) / 10


def test_terminal_output_rewrites_the_line(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    monkeypatch.setattr(sys, "stdout", stream)
    bar = Progbar(target=4)
    bar.update(1, [("loss", 1.0)], force=True)
    bar.update(4, [("loss", 1.0)])
    text = stream.getvalue()
    assert "\r" in text and "\b" in text and text.endswith("\n") and text.count("\n") == 1


def test_verbose_2_prints_one_line_at_the_end(capsys):
    bar = Progbar(target=4, verbose=2)
    bar.update(2, [("loss", 1.0)], force=True)
    assert capsys.readouterr().out == ""
    bar.update(4, [("loss", 1.0), ("acc", 0.5)])
    assert capsys.readouterr().out == " - 0s - loss: 1.0000 - acc: 0.5000\n"
    Progbar(target=4, verbose=0).update(4, [("loss", 1.0)])
    assert capsys.readouterr().out == ""


def test_stateful_values_shown_as_given(capsys):
    bar = Progbar(target=2, stateful_metrics=["loss"])
    bar.update(1, [("loss", 5.0)], force=True)
    bar.update(2, [("loss", 1.0)])
    assert capsys.readouterr().out.splitlines()[-1].endswith("loss: 1.0000")


def drive(progbar, params, batches, epoch_logs):
    model = FakeModel()
    cbks = CallbackList([progbar])
    cbks.set_model(model)
    cbks.set_params(params)
    cbks.on_train_begin({})
    cbks.on_epoch_begin(0, {})
    for batch, logs in enumerate(batches):
        cbks.on_train_batch_end(batch, dict(logs, batch=batch))
    cbks.on_epoch_end(0, epoch_logs)
    cbks.on_train_end({})


PARAMS = {"epochs": 3, "samples": 30, "steps": 2, "batch_size": 20, "verbose": 1,
          "metrics": ["loss", "acc", "val_loss"]}


def test_logger_final_line_shows_the_epoch_logs_exactly(capsys):
    batches = [{"size": 20, "loss": 1.0, "acc": 0.0}, {"size": 10, "loss": 4.0, "acc": 1.0}]
    drive(ProgbarLogger(), PARAMS, batches, {"loss": 1.23456, "acc": 0.5, "val_loss": 0.0001, "lr": 0.1})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/3"
    assert lines[1].startswith("20/30 [===================>..........] - ETA:")
    assert lines[1].endswith(" - loss: 1.0000 - acc: 0.0000e+00")
    assert lines[-1].startswith("30/30 [==============================]")
    assert lines[-1].endswith(" - loss: 1.2346 - acc: 0.5000 - val_loss: 1.0000e-04")


def test_logger_steps_mode_and_verbose_2(capsys):
    batches = [{"size": 20, "loss": 1.0}, {"size": 10, "loss": 4.0}]
    drive(ProgbarLogger(count_mode="steps"), PARAMS, batches, {"loss": 2.0})
    assert capsys.readouterr().out.splitlines()[-1].startswith("2/2 [=====")
    drive(ProgbarLogger(), dict(PARAMS, verbose=2), batches, {"loss": 2.0, "acc": 0.25})
    assert capsys.readouterr().out == "Epoch 1/3\n - 0s - loss: 2.0000 - acc: 0.2500\n"
    drive(ProgbarLogger(), dict(PARAMS, verbose=0), batches, {"loss": 2.0})
    assert capsys.readouterr().out == ""


def test_logger_stopped_epoch_still_ends_its_line(capsys):
    drive(ProgbarLogger(), PARAMS, [{"size": 20, "loss": 1.0}], {"loss": 1.0})
    out = capsys.readouterr().out
    assert out.endswith("loss: 1.0000\n") and "30/30 [====" in out


def test_unknown_count_mode():
    with pytest.raises(ValueError, match="count_mode.*'batches'"):
        ProgbarLogger(count_mode="batches")
