"""make_batch_hook: when a hook exists, what it sets, the logs it builds, throttling and stop requests."""
import json

import numpy as np
import pytest

from fastfit.callbacks import (Callback, CallbackList, History, LambdaCallback, ProgbarLogger, TerminateOnNaN,
                               make_batch_hook)

from callback_helpers import FakeModel


def stats_for(batch_values, seen, sums):
    """The engine's stats array: [batch values..., seen, running sums...]."""
    return np.array(list(batch_values) + [seen] + list(sums), dtype=np.float64)


def test_no_hook_when_nobody_listens():
    model = FakeModel()
    cbks = CallbackList([History(), Callback(), LambdaCallback(on_epoch_end=print)])
    for mode in ("train", "test", "predict"):
        assert make_batch_hook(cbks, mode, ["loss"], model) is None


def test_unknown_mode():
    with pytest.raises(ValueError, match="predict"):
        make_batch_hook(CallbackList(), "eval", ["loss"], FakeModel())


def test_train_end_logs_are_plain_python_and_per_batch():
    seen = []
    cbks = CallbackList([LambdaCallback(on_batch_end=lambda b, logs: seen.append((b, dict(logs))))])
    model = FakeModel()
    hook = make_batch_hook(cbks, "train", ["loss", "acc"], model)
    assert (hook.batch_begin, hook.batch_end, hook.end_interval) == (False, True, 0.0)
    stop = hook(1, np.int64(2), np.int64(16), stats_for([0.25, 0.5], 48, [30.0, 20.0]))
    assert not stop
    assert seen == [(2, {"batch": 2, "size": 16, "loss": 0.25, "acc": 0.5})]
    batch, logs = seen[0]
    assert type(batch) is int and type(logs["size"]) is int and type(logs["loss"]) is float
    json.dumps(logs)


def test_begin_logs_and_stop_flag_returned_after_end_only():
    calls = []

    class Stopper(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            calls.append(("begin", batch, dict(logs)))
            self.model.stop_training = True

    model = FakeModel()
    cbks = CallbackList([Stopper()])
    cbks.set_model(model)
    hook = make_batch_hook(cbks, "train", ["loss"], model)
    assert hook.batch_begin and hook.batch_end  # end is kept so the stop is seen after the batch
    assert not hook(0, 0, 8, stats_for([0.0], 0, [0.0]))
    assert calls == [("begin", 0, {"batch": 0, "size": 8})]
    assert hook(1, 0, 8, stats_for([0.1], 8, [0.8]))


def test_stop_requested_before_the_epoch_makes_a_hook():
    model = FakeModel()
    model.stop_training = True
    hook = make_batch_hook(CallbackList([History()]), "train", ["loss"], model)
    assert hook is not None and hook.batch_end and hook.end_interval == 0
    assert hook(1, 0, 4, stats_for([1.0], 4, [4.0]))
    assert make_batch_hook(CallbackList([History()]), "test", ["loss"], model) is None


def test_test_mode_never_stops_and_uses_test_hooks():
    seen = []
    model = FakeModel()
    model.stop_training = True
    cbks = CallbackList([LambdaCallback(on_test_batch_end=lambda b, logs: seen.append(logs),
                                        on_batch_end=lambda b, logs: seen.append("train!"))])
    hook = make_batch_hook(cbks, "test", ["loss", "mse"], model)
    assert hook.batch_end and not hook.batch_begin
    assert not hook(1, 0, 5, stats_for([2.0, 3.0], 5, [10.0, 15.0]))
    assert seen == [{"batch": 0, "size": 5, "loss": 2.0, "mse": 3.0}]


def test_predict_end_logs_carry_the_output_slice():
    out = np.arange(20, dtype=np.float32).reshape(10, 2)
    seen = []
    cbks = CallbackList([LambdaCallback(on_predict_batch_end=lambda b, logs: seen.append(logs),
                                        on_predict_batch_begin=lambda b, logs: seen.append(logs))])
    hook = make_batch_hook(cbks, "predict", [], FakeModel(), out=out)
    assert hook.batch_begin and hook.batch_end
    hook(0, 1, 4, np.array([4.0]))
    hook(1, 1, 4, np.array([4.0]))
    assert seen[0] == {"batch": 1, "size": 4}
    assert set(seen[1]) == {"batch", "size", "outputs"}
    np.testing.assert_array_equal(seen[1]["outputs"], out[4:8])


def _progbar(verbose=1):
    progbar = ProgbarLogger()
    progbar.set_params({"verbose": verbose, "epochs": 1, "samples": 40, "steps": 4, "batch_size": 10,
                        "metrics": ["loss", "acc"]})
    return progbar


def test_progbar_alone_is_throttled_and_gets_running_means(capsys):
    progbar = _progbar()
    model = FakeModel()
    cbks = CallbackList([progbar, History()])
    cbks.set_model(model)
    cbks.on_train_begin({})
    cbks.on_epoch_begin(0, {})
    hook = make_batch_hook(cbks, "train", ["loss", "acc"], model)
    assert hook.batch_end and hook.end_interval == pytest.approx(0.05)
    hook(1, 1, 10, stats_for([9.0, 9.0], 20, [10.0, 5.0]))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/1"
    assert lines[1].startswith("20/40 [") and lines[1].endswith(" - loss: 0.5000 - acc: 0.2500")
    received = []
    progbar.on_train_batch_means = lambda batch, logs: received.append(logs)
    hook = make_batch_hook(cbks, "train", ["loss", "acc"], model)
    hook(1, 1, 10, stats_for([9.0, 9.0], 20, [10.0, 5.0]))
    assert received == [{"batch": 1, "seen": 20, "loss": 0.5, "acc": 0.25}]


def test_progbar_with_a_per_batch_callback_gets_every_batch():
    progbar = _progbar()
    model = FakeModel()
    cbks = CallbackList([progbar, TerminateOnNaN()])
    cbks.set_model(model)
    hook = make_batch_hook(cbks, "train", ["loss", "acc"], model)
    assert hook.end_interval == 0
    calls = []
    progbar.on_train_batch_end = lambda batch, logs: calls.append(logs)
    hook = make_batch_hook(cbks, "train", ["loss", "acc"], model)
    hook(1, 0, 10, stats_for([1.0, 0.0], 10, [10.0, 0.0]))
    assert calls == [{"batch": 0, "size": 10, "loss": 1.0, "acc": 0.0}]


def test_progbar_verbose_2_needs_no_hook():
    model = FakeModel()
    cbks = CallbackList([_progbar(verbose=2), History()])
    assert make_batch_hook(cbks, "train", ["loss"], model) is None


def test_exceptions_from_callbacks_propagate_unchanged():
    class Boom(Exception):
        pass

    def explode(batch, logs):
        raise Boom("from the callback")

    hook = make_batch_hook(CallbackList([LambdaCallback(on_batch_end=explode)]), "train", ["loss"], FakeModel())
    with pytest.raises(Boom, match="from the callback"):
        hook(1, 0, 1, stats_for([0.0], 1, [0.0]))


def test_stop_already_requested_disables_the_progbar_throttle():
    model = FakeModel()
    model.stop_training = True
    hook = make_batch_hook(CallbackList([_progbar()]), "train", ["loss"], model)
    assert hook.end_interval == 0 and hook(1, 0, 10, stats_for([1.0], 10, [10.0]))


def test_progbar_subclass_with_its_own_batch_end_gets_every_batch():
    class Counting(ProgbarLogger):
        calls = 0

        def on_batch_end(self, batch, logs=None):
            self.calls += 1

    progbar = Counting()
    progbar.set_params({"verbose": 0})
    assert progbar.batch_end_interval == 0 and ProgbarLogger().batch_end_interval == 0.05
    hook = make_batch_hook(CallbackList([progbar]), "train", ["loss"], FakeModel())
    assert hook.end_interval == 0
    hook(1, 0, 1, stats_for([1.0], 1, [1.0]))
    assert progbar.calls == 1


def test_both_engines_give_callbacks_the_same_batch_logs():
    """The Cython engine builds batch-end logs itself (`BatchHook.end_calls`); the reference engine calls
    the hook. Callbacks see the same keys, types and values, in one shared dict per batch."""
    import fastfit
    from fastfit.layers import Dense
    from fastfit.models import Sequential
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4)).astype("float64")
    y = fastfit.utils.to_categorical(rng.integers(0, 3, 20), 3).astype("float64")
    seen = {}
    for name in ("cython", "python"):
        fastfit.utils.set_random_seed(1)
        model = Sequential([Dense(3, input_dim=4, activation="softmax")])
        model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["acc"], engine=name)
        first, second = [], []
        # The lambdas run inside this iteration, so they see its `model`, `first` and `second`.
        stop = LambdaCallback(on_batch_end=lambda b, l: setattr(model, "stop_training", b == 2))  # noqa: B023
        model.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0,
                  callbacks=[LambdaCallback(on_batch_end=lambda b, l: first.append((b, l))),  # noqa: B023
                             LambdaCallback(on_train_batch_end=lambda b, l: second.append((b, l))),  # noqa: B023
                             stop])
        assert all(a is b for (_, a), (_, b) in zip(first, second))  # one dict, shared
        seen[name] = [(b, {k: (type(v), v) for k, v in l.items()}) for b, l in first]
    assert [b for b, _ in seen["cython"]] == [b for b, _ in seen["python"]] == [0, 1, 2]  # stopped after 2
    for (_, a), (_, b) in zip(seen["cython"], seen["python"]):
        assert list(a) == list(b) == ["batch", "size", "loss", "acc"]
        assert {k: t for k, (t, _) in a.items()} == {k: t for k, (t, _) in b.items()}
        assert a["batch"] == b["batch"] and a["size"] == b["size"]
        np.testing.assert_allclose([a["loss"][1], a["acc"][1]], [b["loss"][1], b["acc"][1]], rtol=1e-6)


def test_the_engine_lets_go_of_the_callbacks_after_fit():
    import weakref
    import fastfit
    from fastfit.layers import Dense
    from fastfit.models import Sequential
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4)).astype("float32")
    y = fastfit.utils.to_categorical(rng.integers(0, 3, 20), 3)
    model = Sequential([Dense(3, input_dim=4, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", engine="cython")

    class Counter(Callback):
        def on_batch_end(self, batch, logs=None):
            pass
    counter = Counter()
    alive = weakref.ref(counter)
    model.fit(x, y, batch_size=5, epochs=1, verbose=0, callbacks=[counter])
    del counter
    assert alive() is None  # nothing (such as the engine's batch-end shortcut) holds it any more
