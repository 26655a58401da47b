"""LearningRateScheduler and ReduceLROnPlateau on a duck-typed model (worked sequences of the spec)."""
import functools

import numpy as np
import pytest

from fastfit.callbacks import CallbackList, LearningRateScheduler, ReduceLROnPlateau

from callback_helpers import FakeModel, run_epochs


def lr_trace(callback, values, lr=1.0, key="val_loss"):
    """Run epochs with a constant or given monitor and return the lr after each epoch's on_epoch_end."""
    model = FakeModel(lr)
    trace = []
    cbks = CallbackList([callback])
    cbks.set_model(model)
    cbks.set_params({"verbose": 0})
    cbks.on_train_begin({})
    for epoch, value in enumerate(values):
        cbks.on_epoch_begin(epoch, {})
        logs = {key: value}
        cbks.on_epoch_end(epoch, logs)
        trace.append(model.optimizer.lr)
    return trace, logs


@pytest.mark.parametrize("kwargs, expected", [
    (dict(factor=0.5, min_delta=0, patience=1), [1, .5, .25, .125, .0625]),
    (dict(factor=0.5, min_delta=0, patience=1, cooldown=2), [1, .5, .5, .25, .25, .125, .125, .0625]),
    (dict(factor=0.1, min_lr=0.05, patience=1, min_delta=0), [1, 0.1, 0.05, 0.05, 0.05]),
])
def test_reduce_on_constant_monitor(kwargs, expected):
    trace, _ = lr_trace(ReduceLROnPlateau(**kwargs), [1.0] * len(expected))
    assert trace == pytest.approx(expected)


def test_reduce_defaults_on_a_worsening_val_loss():
    trace, _ = lr_trace(ReduceLROnPlateau(patience=2), [0.0860, 0.1096, 0.1040])
    assert trace == pytest.approx([1, 1, 0.1])


def test_reduce_logs_the_rate_used_in_the_epoch_and_stays_silent_at_min_lr(capsys):
    callback = ReduceLROnPlateau(factor=0.1, min_lr=0.05, patience=1, min_delta=0, verbose=1)
    model = FakeModel(1.0)
    seen = []
    cbks = CallbackList([callback])
    cbks.set_model(model)
    cbks.on_train_begin({})
    for epoch in range(6):
        logs = {"val_loss": 1.0}
        cbks.on_epoch_end(epoch, logs)
        seen.append(logs["lr"])
        assert type(logs["lr"]) is float
    assert seen == pytest.approx([1, 1, 0.1, 0.05, 0.05, 0.05])
    out = capsys.readouterr().out
    assert out.count("ReduceLROnPlateau reducing learning rate") == 2
    assert "\nEpoch 00002: ReduceLROnPlateau reducing learning rate to 0.1." in out


def test_reduce_max_mode_and_auto_for_accuracy():
    trace, _ = lr_trace(ReduceLROnPlateau(monitor="val_acc", factor=0.5, patience=1, min_delta=0),
                        [0.5, 0.6, 0.6], key="val_acc")
    assert trace == pytest.approx([1, 1, 0.5])


def test_reduce_legacy_epsilon_and_bad_arguments():
    with pytest.warns(UserWarning, match="epsilon"):
        callback = ReduceLROnPlateau(epsilon=0.3)
    assert callback.min_delta == 0.3 and not hasattr(callback, "epsilon")
    with pytest.raises(ValueError, match="factor >= 1.0"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="'auto', 'min', 'max'"):
        ReduceLROnPlateau(mode="down")
    with pytest.raises(TypeError, match="pateince"):
        ReduceLROnPlateau(pateince=3)


def test_reduce_missing_monitor_warns_and_continues():
    with pytest.warns(RuntimeWarning, match="Reduce LR on plateau conditioned on metric `val_loss`.*loss"):
        ran = run_epochs([ReduceLROnPlateau(patience=0)], FakeModel(), [None, None])
    assert ran == 2


def test_scheduler_one_and_two_argument_forms(capsys):
    model = FakeModel(0.5)
    seen = []

    def two(epoch, lr):
        seen.append((epoch, lr, type(lr)))
        return lr / 2

    callback = LearningRateScheduler(two, verbose=1)
    cbks = CallbackList([callback])
    cbks.set_model(model)
    cbks.on_epoch_begin(3, {})
    assert seen == [(3, 0.5, float)] and model.optimizer.lr == 0.25
    logs = {}
    cbks.on_epoch_end(3, logs)
    assert logs == {"lr": 0.25}
    assert "\nEpoch 00004: LearningRateScheduler setting learning rate to 0.25." in capsys.readouterr().out
    for schedule in (lambda epoch: 0.1 * (epoch + 1), lambda *args: 0.1 * (args[0] + 1),
                     functools.partial(lambda scale, epoch: scale * (epoch + 1), 0.1), np.float32):
        model = FakeModel(1.0)
        cbks = CallbackList([LearningRateScheduler(schedule)])
        cbks.set_model(model)
        cbks.on_epoch_begin(1, {})
        assert model.optimizer.lr == pytest.approx(0.2 if schedule is not np.float32 else 1.0)


def test_scheduler_errors_inside_the_schedule_propagate_unchanged():
    def broken(epoch, lr):
        raise TypeError("bug inside the schedule")

    cbks = CallbackList([LearningRateScheduler(broken)])
    cbks.set_model(FakeModel())
    with pytest.raises(TypeError, match="bug inside the schedule"):
        cbks.on_epoch_begin(0, {})


@pytest.mark.parametrize("result", ["0.1", None, [0.1], True])
def test_scheduler_rejects_non_numbers_naming_the_schedule(result):
    def my_schedule(epoch):
        return result

    cbks = CallbackList([LearningRateScheduler(my_schedule)])
    cbks.set_model(FakeModel())
    with pytest.raises(ValueError, match="my_schedule.*float"):
        cbks.on_epoch_begin(0, {})


def constant(value):
    def schedule(epoch):
        return value
    return schedule


def test_scheduler_accepts_numpy_and_int_and_zero():
    for value, expected in ((np.float64(0.3), 0.3), (np.float32(0.5), 0.5), (1, 1.0), (0.0, 0.0)):
        model = FakeModel()
        cbks = CallbackList([LearningRateScheduler(constant(value))])
        cbks.set_model(model)
        cbks.on_epoch_begin(0, {})
        assert model.optimizer.lr == expected and type(model.optimizer.lr) is float


def test_scheduler_needs_an_optimizer_with_lr_and_a_callable():
    model = FakeModel()
    model.optimizer = object()
    cbks = CallbackList([LearningRateScheduler(lambda e: 0.1)])
    cbks.set_model(model)
    with pytest.raises(ValueError, match='Optimizer must have a "lr" attribute'):
        cbks.on_epoch_begin(0, {})
    with pytest.raises(TypeError, match="schedule"):
        LearningRateScheduler(0.1)
