"""The hook protocol of the reference Network: call order, stats layout, stopping, lr changes, optimizer
write-back, end_interval throttling, exceptions."""
import types

import numpy as np
import pytest

from fastfit._reference import loop
from fastfit._reference.loop import Network
from ref_helpers import RecordingHook, StubOptimizer


def setup(n=10, dtype=np.float64, kind="sgd", **hyper):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 4)).astype(dtype)
    b = np.zeros(4, dtype)
    x = rng.normal(size=(n, 3)).astype(dtype)
    y = np.eye(4, dtype=dtype)[rng.integers(0, 4, n)]
    net = Network([("dense", W, b), ("activation", "softmax")], "categorical_crossentropy",
                  ["categorical_accuracy"], dtype)
    opt = StubOptimizer(kind, [W, b], **({"lr": 0.5} | hyper))
    return net, opt, x, y, np.arange(n, dtype=np.int64), [W, b]


def test_calls_sizes_and_optimizer_state_at_each_boundary(dtype):
    net, opt, x, y, order, _ = setup(dtype=dtype)
    opt.iterations = 5
    hook = RecordingHook(optimizer=opt)
    sums = net.train_epoch(x, y, None, order, 4, opt, hook)
    assert sums[0] == 10
    assert [c[:3] for c in hook.calls] == [(0, 0, 4), (1, 0, 4), (0, 1, 4), (1, 1, 4), (0, 2, 2), (1, 2, 2)]
    assert [c[4] for c in hook.calls] == [5, 6, 6, 7, 7, 8]  # iterations written back before each call
    assert opt.iterations == 8


def test_stats_layout_and_reuse():
    net, opt, x, y, order, _ = setup()
    hook = RecordingHook(begin=False)
    sums = net.train_epoch(x, y, None, order, 4, opt, hook)
    assert len(hook.stats_ids) == 1  # one stats array, reused
    stats = [c[3] for c in hook.calls]
    assert all(s.dtype == np.float64 and s.shape == (5,) for s in stats)
    # [batch_loss, batch_acc, seen, loss_sum, acc_sum]: the running sums add up the batch values.
    assert [s[2] for s in stats] == [4, 8, 10]
    np.testing.assert_allclose(stats[-1][3], sum(s[0] * n for s, n in zip(stats, (4, 4, 2))))
    np.testing.assert_allclose(stats[-1][4], sum(s[1] * n for s, n in zip(stats, (4, 4, 2))))
    np.testing.assert_array_equal(stats[-1][2:], sums)


@pytest.mark.parametrize("stop_at,seen", [((1, 1), 8), ((0, 2), 8), ((0, 0), 0), ((1, 0), 4)])
def test_truthy_return_stops_after_that_call(stop_at, seen):
    net, opt, x, y, order, params = setup()
    hook = RecordingHook(action=lambda phase, batch: (phase, batch) == stop_at and "stop")
    sums = net.train_epoch(x, y, None, order, 4, opt, hook)
    assert hook.calls[-1][:2] == stop_at
    assert sums[0] == seen and opt.iterations == seen // 4
    # The weights are those of the completed batches: a fresh run on exactly those rows agrees.
    if seen:
        net2, opt2, _, _, _, params2 = setup()
        net2.train_epoch(x[:seen].copy(), y[:seen].copy(), None, order[:seen].copy(), 4, opt2, None)
        for p, q in zip(params, params2):
            np.testing.assert_array_equal(p, q)


def test_lr_change_is_picked_up_at_the_next_batch():
    net, opt, x, y, order, params = setup(n=12)
    snapshot = {}

    def action(phase, batch):
        if (phase, batch) == (1, 0):
            opt.lr = 0.0  # freeze from batch 1 on
            snapshot["after0"] = [p.copy() for p in params]
        if (phase, batch) == (0, 2):
            snapshot["before2"] = [p.copy() for p in params]
            opt.lr = 0.5  # thaw for the last batch only
    net.train_epoch(x, y, None, order, 4, opt, RecordingHook(action=action))
    for a, b, c in zip(snapshot["after0"], snapshot["before2"], params):
        np.testing.assert_array_equal(a, b)  # batch 1 ran with lr 0
        assert not np.allclose(b, c)  # batch 2 ran with lr 0.5


def test_lr_is_read_at_the_start_of_each_call():
    net, opt, x, y, order, params = setup()
    opt.lr = 0.0
    before = [p.copy() for p in params]
    net.train_epoch(x, y, None, order, 4, opt, None)
    for a, b in zip(before, params):
        np.testing.assert_array_equal(a, b)


def test_nadam_m_schedule_is_written_back_before_hooks():
    net, opt, x, y, order, _ = setup(kind="nadam", lr=0.01)
    seen = []
    hook = RecordingHook(begin=False, action=lambda phase, batch: seen.append(opt.m_schedule))
    net.train_epoch(x, y, None, order, 4, opt, hook)
    mu = [0.9 * (1 - 0.5 * 0.96 ** (t * 0.004)) for t in (1, 2, 3)]
    np.testing.assert_allclose(seen, np.cumprod(mu), rtol=1e-14)
    assert opt.m_schedule == seen[-1]


class FakeClock:
    """monotonic() advancing by `tick` seconds on every read."""

    def __init__(self, tick):
        self.now, self.tick = 0.0, tick

    def monotonic(self):
        value = self.now
        self.now += self.tick
        return value


@pytest.mark.parametrize("n,expected", [(24, [3, 7, 11]), (10, [3, 4])])
def test_end_interval_throttles_and_always_calls_the_last_batch(monkeypatch, n, expected):
    # Start of the call at t=0, batch k ends at t=0.25 (k + 1); interval 1 s.
    monkeypatch.setattr(loop, "time", types.SimpleNamespace(monotonic=FakeClock(0.25).monotonic))
    net, opt, x, y, order, _ = setup(n=n)
    hook = RecordingHook(begin=False, interval=1.0)
    net.train_epoch(x, y, None, order, 2, opt, hook)
    assert [c[1] for c in hook.calls] == expected
    assert hook.calls[-1][3][2] == n  # the last call sees the full sums


def test_huge_end_interval_calls_only_the_last_batch():
    net, opt, x, y, order, _ = setup()
    hook = RecordingHook(begin=False, interval=1e9)
    net.train_epoch(x, y, None, order, 3, opt, hook)
    assert [c[:3] for c in hook.calls] == [(1, 3, 1)]


def test_hook_exceptions_propagate_after_writing_back():
    net, opt, x, y, order, params = setup()

    def action(phase, batch):
        if (phase, batch) == (0, 2):
            raise KeyError("boom")
    with pytest.raises(KeyError, match="boom"):
        net.train_epoch(x, y, None, order, 4, opt, RecordingHook(action=action))
    assert opt.iterations == 2


def test_evaluate_and_predict_hooks():
    net, opt, x, y, order, _ = setup()
    hook = RecordingHook(action=lambda phase, batch: (phase, batch) == (1, 1))
    sums = net.evaluate(x, y, None, 4, hook)
    assert [c[:3] for c in hook.calls] == [(0, 0, 4), (1, 0, 4), (0, 1, 4), (1, 1, 4)]
    assert sums[0] == 8
    out = np.full((10, 4), np.nan)
    rows = []

    def action(phase, batch):
        start = int(hook2.calls[-1][3][0])
        size = hook2.calls[-1][2]
        rows.append((phase, start, bool(np.all(np.isfinite(out[start:start + size])))))
    hook2 = RecordingHook(action=action)
    net.predict(x, 4, out, hook2)
    # stats is [start_row]; the end call can read that batch's rows of `out`.
    assert rows == [(0, 0, False), (1, 0, True), (0, 4, False), (1, 4, True), (0, 8, False), (1, 8, True)]
