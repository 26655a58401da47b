"""EarlyStopping (the spec's algorithm and worked examples) and TerminateOnNaN, on a duck-typed model."""
import math

import numpy as np
import pytest

from fastfit.callbacks import CallbackList, EarlyStopping, TerminateOnNaN

from callback_helpers import FakeModel, run_epochs


@pytest.mark.parametrize("values, kwargs, key, epochs_run", [
    ([0.0860, 0.1096, 0.1040, 0.1019], dict(patience=2), "val_loss", 3),
    ([0.55, 0.76, 0.81, 0.81], dict(baseline=0.75, patience=2), "val_acc", 4),
    ([0.55, 0.74, 0.81, 0.81], dict(baseline=0.75, patience=2), "val_acc", 2),
    ([0.2, 0.15, 0.1, 0.11, 0.12], dict(patience=2), "val_loss", 5),
    ([1.0, 0.5, 0.6], dict(patience=0), "val_loss", 3),
    ([1.0, 1.2, 0.5], dict(patience=0), "val_loss", 2),
    ([1.0, 0.95, 0.9], dict(min_delta=0.1, patience=1), "val_loss", 2),
    ([1.0, 0.95, 0.9], dict(min_delta=-0.1, patience=1), "val_loss", 2),  # abs(min_delta)
    ([0.5, 0.4, 0.3], dict(mode="max", patience=1, monitor="score"), "score", 2),
    ([0.5, 0.4, 0.3], dict(mode="min", patience=1, monitor="score"), "score", 3),
    ([0.5, 0.6, 0.7], dict(patience=0, monitor="val_auc"), "val_auc", 3),
])
def test_worked_examples(values, kwargs, key, epochs_run):
    kwargs.setdefault("monitor", key)
    assert run_epochs([EarlyStopping(**kwargs)], FakeModel(), values, key=key) == epochs_run


def test_start_from_epoch_ignores_the_warm_up_epochs():
    # Epochs 0 and 1 are not monitored: their low loss is neither the best nor counted against patience.
    model = FakeModel()
    stopper = EarlyStopping(patience=1, start_from_epoch=2, restore_best_weights=True)
    assert run_epochs([stopper], model, [0.01, 0.02, 0.5, 0.4, 0.45, 0.5]) == 5
    assert stopper.best == 0.4 and stopper.best_epoch == 3 and stopper.stopped_epoch == 4
    np.testing.assert_array_equal(model.weights[0], np.full(3, 3.0))
    # without it, the first epoch is the best and training stops at once
    assert run_epochs([EarlyStopping(patience=1)], FakeModel(), [0.01, 0.02, 0.5, 0.4, 0.45, 0.5]) == 2


@pytest.mark.parametrize("value", [-1, 1.5, True, "2"])
def test_start_from_epoch_must_be_a_non_negative_int(value):
    with pytest.raises(ValueError, match="start_from_epoch"):
        EarlyStopping(start_from_epoch=value)


def test_restore_best_weights_when_it_stops():
    model = FakeModel()
    stopper = EarlyStopping(patience=2, restore_best_weights=True)
    assert run_epochs([stopper], model, [0.2, 0.15, 0.1, 0.11, 0.12]) == 5
    assert stopper.stopped_epoch == 4 and stopper.best_epoch == 2
    np.testing.assert_array_equal(model.weights[0], np.full(3, 2.0))
    plain = FakeModel()
    run_epochs([EarlyStopping(patience=2)], plain, [0.2, 0.15, 0.1, 0.11, 0.12])
    np.testing.assert_array_equal(plain.weights[0], np.full(3, 4.0))


def test_restore_best_weights_even_without_an_early_stop(capsys):
    model = FakeModel()
    stopper = EarlyStopping(patience=5, restore_best_weights=True, verbose=1)
    assert run_epochs([stopper], model, [0.3, 0.1, 0.2]) == 3
    assert stopper.stopped_epoch == 0
    np.testing.assert_array_equal(model.weights[0], np.full(3, 1.0))
    out = capsys.readouterr().out
    assert "Restoring model weights from the end of the best epoch: 2." in out
    assert "early stopping" not in out


def test_unmet_baseline_with_restore_does_not_crash_and_restores_first_epoch():
    model = FakeModel()
    stopper = EarlyStopping(monitor="val_acc", baseline=0.9, patience=2, restore_best_weights=True)
    assert run_epochs([stopper], model, [0.5, 0.4, 0.3], key="val_acc") == 2
    np.testing.assert_array_equal(model.weights[0], np.full(3, 0.0))


def test_verbose_messages_are_one_based(capsys):
    run_epochs([EarlyStopping(patience=1, verbose=1)], FakeModel(), [0.1, 0.2, 0.3, 0.4])
    assert "Epoch 00002: early stopping" in capsys.readouterr().out


def test_reuse_starts_from_scratch():
    stopper = EarlyStopping(patience=1)
    assert run_epochs([stopper], FakeModel(), [0.1, 0.2]) == 2
    assert run_epochs([stopper], FakeModel(), [5.0, 4.0, 3.0]) == 3
    assert stopper.best == 3.0 and stopper.stopped_epoch == 0


def test_missing_monitor_warns_naming_available_keys_and_continues():
    with pytest.warns(RuntimeWarning, match="val_loss.*not available.*loss,acc"):
        ran = run_epochs([EarlyStopping(patience=0)], FakeModel(), [None, None], extra={"acc": 0.5})
    assert ran == 2


@pytest.mark.parametrize("kwargs, error", [
    (dict(mode="maximum"), ValueError), (dict(patience=-1), ValueError), (dict(monitor=3), TypeError),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(error) as info:
        EarlyStopping(**kwargs)
    assert str(next(iter(kwargs.values()))) in str(info.value)
    if "mode" in kwargs:
        assert "'auto', 'min', 'max'" in str(info.value)


@pytest.mark.parametrize("loss", [math.nan, math.inf, -math.inf])
def test_terminate_on_nan(loss, capsys):
    model = FakeModel()
    cbks = CallbackList([TerminateOnNaN()])
    cbks.set_model(model)
    cbks.on_train_batch_end(0, {"batch": 0, "size": 2, "loss": 1.0})
    assert not model.stop_training
    cbks.on_train_batch_end(7, {"batch": 7, "size": 2, "loss": loss})
    assert model.stop_training
    assert capsys.readouterr().out == "Batch 7: Invalid loss, terminating training\n"
    cbks.on_train_batch_end(8, {"batch": 8, "size": 2})  # no loss key: nothing to check
