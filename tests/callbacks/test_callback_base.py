"""Callback and CallbackList: hook forwarding, shared logs, type checks, per-instance batch-hook detection."""
import numpy as np
import pytest

from fastfit.callbacks import (BaseLogger, Callback, CallbackList, EarlyStopping, History, LambdaCallback,
                               ModelCheckpoint, ProgbarLogger, TerminateOnNaN)

from callback_helpers import FakeModel


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("on_batch_end", batch, logs))


def test_base_hooks_exist_and_accept_missing_logs():
    callback = Callback()
    assert callback.model is None and callback.validation_data is None
    assert not hasattr(callback, "params")
    for name in ("on_train_begin", "on_train_end", "on_test_begin", "on_test_end", "on_predict_begin",
                 "on_predict_end"):
        getattr(callback, name)()
    for name in ("on_epoch_begin", "on_epoch_end", "on_batch_begin", "on_batch_end", "on_train_batch_begin",
                 "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin",
                 "on_predict_batch_end"):
        getattr(callback, name)(0)
    callback._set_params({"a": 1})
    callback._set_model("m")
    assert callback.params == {"a": 1} and callback.model == "m"


def test_train_batch_hooks_forward_positionally_to_legacy_hooks():
    recorder = Recorder()
    logs = {"loss": 0.5}
    recorder.on_train_batch_end(3, logs)
    assert recorder.calls == [("on_batch_end", 3, logs)]
    seen = []
    callback = LambdaCallback(on_batch_begin=lambda b, whatever: seen.append((b, whatever)))
    callback.on_train_batch_begin(1, {"size": 2})
    assert seen == [(1, {"size": 2})]


def test_overriding_both_hooks_without_super_calls_only_the_new_one():
    class Both(Callback):
        def __init__(self):
            self.calls = []  # no super().__init__(): must still work

        def on_batch_end(self, batch, logs=None):
            self.calls.append("old")

        def on_train_batch_end(self, batch, logs=None):
            self.calls.append("new")

    callback = Both()
    cbks = CallbackList([callback])
    cbks.on_batch_end(0, {})
    cbks.on_train_batch_end(1, {})
    assert callback.calls == ["new", "new"]
    assert callback.model is None and callback.validation_data is None


def test_list_passes_the_same_dict_in_order_and_never_none():
    order = []

    class Adder(Callback):
        def on_epoch_end(self, epoch, logs=None):
            order.append("adder")
            logs["extra"] = 1.5

    class Reader(Callback):
        def on_epoch_end(self, epoch, logs=None):
            order.append("reader")
            assert logs["extra"] == 1.5

    history = History()
    cbks = CallbackList([Adder(), Reader(), history])
    cbks.on_train_begin()
    logs = {"loss": 1.0}
    cbks.on_epoch_end(0, logs)
    assert order == ["adder", "reader"]
    assert history.history == {"loss": [1.0], "extra": [1.5]}
    received = []
    probe = LambdaCallback(on_test_end=lambda logs: received.append(logs), on_train_begin=received.append)
    cbks = CallbackList([probe])
    cbks.on_test_end(None)
    cbks.on_train_begin(None)
    assert received == [{}, {}]


def test_list_stores_model_params_and_validation_data():
    first, second = Callback(), Callback()
    cbks = CallbackList([first, second])
    data = [np.zeros((2, 3)), np.ones((2, 1))]
    cbks.set_validation_data(data)
    cbks.set_model("model")
    cbks.set_params({"epochs": 2})
    assert cbks.model == "model" and cbks.params == {"epochs": 2}
    for callback in (first, second):
        assert callback.validation_data is data and callback.model == "model" and callback.params == {"epochs": 2}
    assert list(cbks) == [first, second] and len(cbks) == 2
    cbks.append(History())
    assert len(cbks) == 3


@pytest.mark.parametrize("bad, fragment", [
    (["not a callback"], "callbacks[0]"),
    ([Callback(), 3], "callbacks[1]"),
    ([History], "not the class"),
    (Callback(), "list"),
    (5, "int"),
])
def test_non_callback_items_raise_type_error_naming_the_item(bad, fragment):
    with pytest.raises(TypeError, match="Callback") as info:
        CallbackList(bad)
    assert fragment in str(info.value)


def test_empty_and_none_lists():
    assert list(CallbackList()) == [] and list(CallbackList(None)) == [] and list(CallbackList(())) == []


class _Plain(Callback):
    pass


@pytest.mark.parametrize("make, train, test, predict", [
    (lambda: _Plain(), (False, False), (False, False), (False, False)),
    (lambda: Recorder(), (False, True), (False, False), (False, False)),
    (lambda: LambdaCallback(on_epoch_end=print), (False, False), (False, False), (False, False)),
    (lambda: LambdaCallback(on_batch_begin=print), (True, False), (False, False), (False, False)),
    (lambda: LambdaCallback(on_test_batch_end=print), (False, False), (False, True), (False, False)),
    (lambda: LambdaCallback(on_predict_batch_begin=print), (False, False), (False, False), (True, False)),
    (lambda: History(), (False, False), (False, False), (False, False)),
    (lambda: EarlyStopping(), (False, False), (False, False), (False, False)),
    (lambda: TerminateOnNaN(), (False, True), (False, False), (False, False)),
    (lambda: BaseLogger(), (False, True), (False, False), (False, False)),
    (lambda: ModelCheckpoint("x.h5"), (False, False), (False, False), (False, False)),
    (lambda: ModelCheckpoint("x.h5", save_freq=3), (False, True), (False, False), (False, False)),
])
def test_batch_hook_needs_are_decided_per_instance(make, train, test, predict):
    callback = make()
    assert callback.batch_hooks_needed("train") == train
    assert callback.batch_hooks_needed("test") == test
    assert callback.batch_hooks_needed("predict") == predict
    assert callback._implements_train_batch_hooks() == any(train)


def test_assigning_a_hook_on_the_instance_counts_as_implemented():
    callback = _Plain()
    callback.on_batch_end = lambda batch, logs: None
    assert callback.batch_hooks_needed("train") == (False, True)
    other = _Plain()
    original = other.on_test_batch_begin

    def wrapped(*args, **kwargs):  # the Counter of Keras' own tests wraps hooks like this
        return original(*args, **kwargs)

    other.on_test_batch_begin = wrapped
    assert other.batch_hooks_needed("test") == (True, False)


def test_progbar_needs_batch_ends_only_with_verbose_1():
    progbar = ProgbarLogger()
    for verbose, needed in ((0, False), (1, True), (2, False)):
        progbar.set_params({"verbose": verbose})
        assert progbar.batch_hooks_needed("train") == (False, needed)
        assert progbar.batch_hooks_needed("test") == (False, False)

    class Sub(ProgbarLogger):
        def on_batch_end(self, batch, logs=None):
            pass

    sub = Sub()
    sub.set_params({"verbose": 0})
    assert sub.batch_hooks_needed("train") == (False, True)


def test_unknown_hook_mode_is_a_value_error():
    with pytest.raises(ValueError, match="train"):
        Callback().batch_hooks_needed("fit")


def test_base_logger_standalone_averages_listed_keys():
    logger = BaseLogger(stateful_metrics=["state"])
    cbks = CallbackList([logger])
    cbks.set_model(FakeModel())
    cbks.set_params({"metrics": ["loss", "acc", "state", "val_loss"]})
    cbks.on_epoch_begin(0)
    cbks.on_batch_end(0, {"batch": 0, "size": 10, "loss": 1.0, "acc": 0.5, "state": 7.0})
    cbks.on_batch_end(1, {"batch": 1, "size": 5, "loss": 4.0, "acc": 1.0, "state": 9.0})
    logs = {"val_loss": 3.0}
    cbks.on_epoch_end(0, logs)
    assert logs == pytest.approx({"val_loss": 3.0, "loss": 2.0, "acc": 2.0 / 3.0, "state": 9.0})
    assert "batch" not in logs and "size" not in logs
    cbks.on_epoch_begin(1)
    cbks.on_batch_end(0, {"batch": 0, "size": 4, "loss": 8.0})
    logs = {}
    cbks.on_epoch_end(1, logs)
    assert logs == {"loss": 8.0}


def test_history_resets_on_train_begin():
    history = History()
    cbks = CallbackList([history])
    cbks.on_train_begin()
    cbks.on_epoch_end(2, {"loss": 1.0})
    cbks.on_epoch_end(3, {"loss": 0.5, "lr": 0.1})
    assert history.epoch == [2, 3] and history.history == {"loss": [1.0, 0.5], "lr": [0.1]}
    cbks.on_train_begin()
    assert history.epoch == [] and history.history == {}


def test_tf_keras_extras_of_callback_list():
    model = FakeModel()
    cbks = CallbackList([Callback()], add_history=True, add_progbar=True, model=model, verbose=1, epochs=2)
    kinds = [type(cb) for cb in cbks]
    assert kinds == [Callback, ProgbarLogger, History]
    assert cbks.callbacks[1].count_mode == "steps"
    assert all(cb.model is model and cb.params == {"verbose": 1, "epochs": 2} for cb in cbks)
    mine = History()
    assert list(CallbackList([mine], add_history=True)) == [mine]
