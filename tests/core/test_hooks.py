"""The hook protocol of the Cython engine: call order, stats layout, stop, lr changes, exceptions."""
import numpy as np
import pytest

from core_helpers import Hook, Network, Optimizer, copies, make_data, make_ops

N, BATCH = 10, 4  # batches of 4, 4, 2


def setup(dtype=np.float64, metrics=("categorical_accuracy", "mean_squared_error")):
    ops, params = make_ops(dtype, [3, 5, 3], ["relu", "softmax"])
    x, y = make_data(dtype, N, 3, 3, "categorical_crossentropy")
    net = Network(ops, "categorical_crossentropy", list(metrics), dtype)
    return net, params, x, y, Optimizer("rmsprop", params)


def train(net, x, y, opt, hook, order=None):
    order = np.arange(len(x), dtype=np.int64) if order is None else order
    return net.train_epoch(x, y, None, order, BATCH, opt, hook)


def test_calls_indices_sizes_and_stats():
    net, params, x, y, opt = setup()
    hook = Hook()
    sums = train(net, x, y, opt, hook)
    assert [(c[0], c[1], c[2]) for c in hook.calls] == [(0, 0, 4), (1, 0, 4), (0, 1, 4), (1, 1, 4),
                                                         (0, 2, 2), (1, 2, 2)]
    ends = [c[3] for c in hook.calls if c[0] == 1]
    assert all(len(s) == 3 + 2 * 2 for s in ends)
    running = np.zeros(4)
    for (_, _, size, stats) in [c for c in hook.calls if c[0] == 1]:
        running += np.r_[size, stats[:3] * size]
        np.testing.assert_allclose(stats[3:], running)   # [seen, loss_sum, metric sums] so far
    np.testing.assert_allclose(sums, running)
    assert sums[0] == N and opt.iterations == 3
    assert 0 <= ends[0][1] <= 1  # accuracy of the batch


def test_batch_values_are_measured_before_the_update():
    net, params, x, y, opt = setup()
    start = copies(params)
    hook = Hook(begin=False)
    train(net, x, y, opt, hook)
    for p, s in zip(params, start):
        p[...] = s
    first_batch = net.evaluate(x[:4], y[:4], None, 4, None)
    np.testing.assert_allclose(hook.calls[0][3][:3], first_batch[1:] / 4, rtol=1e-12)


def test_iterations_written_back_before_each_hook_call():
    net, params, x, y, opt = setup()
    seen = []
    hook = Hook(on_call=lambda phase, batch, size, stats: seen.append((phase, batch, opt.iterations)))
    opt.iterations = 5
    train(net, x, y, opt, hook)
    assert seen == [(0, 0, 5), (1, 0, 6), (0, 1, 6), (1, 1, 7), (0, 2, 7), (1, 2, 8)]
    assert opt.iterations == 8


@pytest.mark.parametrize("phase", [0, 1])
def test_stop(phase):
    net, params, x, y, opt = setup()
    hook = Hook(stop_at=(phase, 1))
    sums = train(net, x, y, opt, hook)
    assert sums[0] == (4 if phase == 0 else 8)
    assert opt.iterations == (1 if phase == 0 else 2)
    assert hook.calls[-1][:2] == (phase, 1)


def test_lr_change_takes_effect_at_the_next_batch():
    def set_lr(phase, batch, size, stats):
        if phase == 1 and batch == 0:
            opt.lr = 0.0
    net, params, x, y, opt = setup()
    opt.kind, opt.momentum, opt.slots = "sgd", 0.0, [[np.zeros_like(p)] for p in params]
    opt.lr = 0.1
    after_first = []
    hook = Hook(begin=False, on_call=lambda *a: (set_lr(*a), after_first.append(copies(params))))
    start = copies(params)
    train(net, x, y, opt, hook)
    assert not np.array_equal(after_first[0][0], start[0])            # batch 0 used lr 0.1
    for p, q in zip(params, after_first[0]):
        np.testing.assert_array_equal(p, q)                            # later batches used lr 0


def test_exception_propagates_with_weights_of_last_completed_batch():
    net, params, x, y, opt = setup()
    snapshots = []
    hook = Hook(raise_at=(0, 2), on_call=lambda *a: snapshots.append(copies(params)))
    with pytest.raises(RuntimeError, match="hook failure"):
        train(net, x, y, opt, hook)
    assert opt.iterations == 2
    for p, q in zip(params, snapshots[-1]):
        np.testing.assert_array_equal(p, q)


def test_end_interval_calls_last_batch_only_when_slow():
    net, params, x, y, opt = setup()
    hook = Hook(begin=False, interval=3600.0)
    train(net, x, y, opt, hook)
    assert [(c[0], c[1]) for c in hook.calls] == [(1, 2)]
    np.testing.assert_allclose(hook.calls[0][3][3], N)


def test_evaluate_and_predict_hooks():
    net, params, x, y, opt = setup()
    hook = Hook()
    sums = net.evaluate(x, y, None, BATCH, hook)
    assert [(c[0], c[1], c[2]) for c in hook.calls][-2:] == [(0, 2, 2), (1, 2, 2)]
    np.testing.assert_allclose(hook.calls[-1][3][3:], sums)
    out = np.zeros((N, 3))
    hook = Hook(stop_at=(1, 1))
    net.predict(x, BATCH, out, hook)
    assert [(c[0], c[1], c[3][0]) for c in hook.calls] == [(0, 0, 0), (1, 0, 0), (0, 1, 4), (1, 1, 4)]
    assert np.all(out[8:] == 0) and np.all(out[:8] > 0)


def test_no_metrics_and_empty_input():
    net, params, x, y, opt = setup(metrics=())
    sums = train(net, x, y, opt, None)
    assert sums.shape == (2,)
    empty = net.train_epoch(x[:0], y[:0], None, np.zeros(0, np.int64), 4, opt, Hook())
    np.testing.assert_array_equal(empty, [0, 0])


def test_hooks_and_caller_keep_denormal_floats():
    # The loop flushes denormals to zero for speed; Python code (hooks, the caller) must not see that mode.
    net, params, x, y, opt = setup()
    tiny = np.array([1e-39], np.float32)
    seen = []
    hook = Hook(on_call=lambda *a: seen.append(float((tiny * np.float32(1.0))[0])))
    train(net, x, y, opt, hook)
    assert seen and all(v > 0 for v in seen)
    assert (tiny * np.float32(1.0))[0] > 0


class EndCallsHook(Hook):
    """A hook that also offers the `end_calls` shortcut; its own batch-end calls are recorded apart."""

    def __init__(self, keys, stop_model=None, **kwargs):
        super().__init__(**kwargs)
        self.logs = []
        self.end_calls = ((lambda batch, logs: self.logs.append((batch, dict(logs))),), keys, stop_model)


def test_end_calls_get_the_batch_logs_the_hook_would_build():
    net, params, x, y, opt = setup()
    plain = Hook()
    train(net, x, y, opt, plain)
    net, params, x, y, opt = setup()
    fast = EndCallsHook(("loss", "acc", "mse"))
    train(net, x, y, opt, fast)
    assert [c[0] for c in fast.calls] == [0, 0, 0]  # batch ends never reach the hook itself
    ends = [c for c in plain.calls if c[0] == 1]
    assert [batch for batch, _ in fast.logs] == [0, 1, 2]
    for (batch, logs), (_, _, size, stats) in zip(fast.logs, ends):
        assert list(logs) == ["batch", "size", "loss", "acc", "mse"]
        assert logs["batch"] == batch and logs["size"] == size and type(logs["size"]) is int
        assert all(type(logs[key]) is float for key in ("loss", "acc", "mse"))
        np.testing.assert_array_equal([logs["loss"], logs["acc"], logs["mse"]], stats[:3])


class Model:
    stop_training = False


def test_end_calls_stop_when_the_model_asks():
    net, params, x, y, opt = setup()
    model = Model()
    hook = EndCallsHook(("loss", "acc", "mse"), stop_model=model, begin=False)
    hook.end_calls = ((lambda batch, logs: setattr(model, "stop_training", batch == 1),),) + hook.end_calls[1:]
    sums = train(net, x, y, opt, hook)
    assert sums[0] == 8 and opt.iterations == 2


@pytest.mark.parametrize("plan, match", [
    ("nonsense", "end_calls"),
    (((print,), ("loss",), None), "3 str keys"),
    (((print,), ("loss", 1, "mse"), None), "3 str keys"),
    (((None,), ("loss", "acc", "mse"), None), "callable"),
])
def test_bad_end_calls_are_refused_before_training(plan, match):
    net, params, x, y, opt = setup()
    before = copies(params)
    hook = Hook()
    hook.end_calls = plan
    with pytest.raises(ValueError, match=match):
        train(net, x, y, opt, hook)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p, b)
