"""Loop behaviour of the Cython engine: gather by order, partial batches, determinism, the released GIL."""
import _thread
import threading
import time

import numpy as np
import pytest

from core_helpers import DTYPES, Network, Optimizer, copies, make_data, make_ops


def fresh(dtype, dropout=None, loss="categorical_crossentropy", kind="adam", sizes=(4, 6, 3)):
    ops, params = make_ops(dtype, list(sizes), ["relu", "softmax"], dropout=dropout)
    return Network(ops, loss, ["categorical_accuracy"], dtype), params, Optimizer(kind, params)


@DTYPES
def test_order_gathers_rows(dtype):
    x, y = make_data(dtype, 11, 4, 3, "categorical_crossentropy")
    w = np.linspace(0.5, 1.5, 11).astype(dtype)
    order = np.random.default_rng(3).permutation(11).astype(np.int64)
    net_a, params_a, opt_a = fresh(dtype, dropout={0: (0.3, 5)})
    net_b, params_b, opt_b = fresh(dtype, dropout={0: (0.3, 5)})
    sums_a = net_a.train_epoch(x, y, w, order, 4, opt_a, None)
    sums_b = net_b.train_epoch(x[order].copy(), y[order].copy(), w[order].copy(), np.arange(11, dtype=np.int64),
                               4, opt_b, None)
    np.testing.assert_array_equal(sums_a, sums_b)
    for a, b in zip(params_a + sum(opt_a.slots, []), params_b + sum(opt_b.slots, [])):
        np.testing.assert_array_equal(a, b)


@DTYPES
def test_a_shorter_order_trains_exactly_those_rows(dtype):
    """A resumed epoch passes only the rest of its order; that equals training on those rows alone."""
    x, y = make_data(dtype, 11, 4, 3, "categorical_crossentropy")
    rest = np.array([7, 2, 9, 0, 5], dtype=np.int64)
    net, params, opt = fresh(dtype, dropout={0: (0.3, 11)})
    sums = net.train_epoch(x, y, None, rest, 2, opt, None)
    alone, alone_params, alone_opt = fresh(dtype, dropout={0: (0.3, 11)})
    alone_sums = alone.train_epoch(np.ascontiguousarray(x[rest]), np.ascontiguousarray(y[rest]), None,
                                   np.arange(5, dtype=np.int64), 2, alone_opt, None)
    assert sums[0] == 5 and opt.iterations == 3
    np.testing.assert_array_equal(sums, alone_sums)
    for a, b in zip(params, alone_params):
        np.testing.assert_array_equal(a, b)


@DTYPES
def test_sparse_labels_match_one_hot(dtype):
    x, y = make_data(dtype, 9, 4, 3, "sparse_categorical_crossentropy")
    order = np.random.default_rng(4).permutation(9).astype(np.int64)
    ops_a, params_a = make_ops(dtype, [4, 6, 3], ["tanh", "softmax"])
    ops_b, params_b = make_ops(dtype, [4, 6, 3], ["tanh", "softmax"])
    net_a = Network(ops_a, "sparse_categorical_crossentropy", ["sparse_categorical_accuracy"], dtype)
    net_b = Network(ops_b, "categorical_crossentropy", ["categorical_accuracy"], dtype)
    sums_a = net_a.train_epoch(x, y, None, order, 4, Optimizer("sgd", params_a), None)
    sums_b = net_b.train_epoch(x, np.eye(3, dtype=dtype)[y], None, order, 4, Optimizer("sgd", params_b), None)
    np.testing.assert_allclose(sums_a, sums_b, rtol=1e-5)
    np.testing.assert_allclose(params_a[0], params_b[0], rtol=1e-5)


@DTYPES
def test_partial_batches_and_batch_larger_than_n(dtype):
    x, y = make_data(dtype, 10, 4, 3, "categorical_crossentropy")
    net, params, opt = fresh(dtype)
    sums = net.evaluate(x, y, None, 4, None)
    parts = sum(net.evaluate(x[i:i + 4], y[i:i + 4], None, 4, None) for i in (0, 4, 8))
    np.testing.assert_allclose(sums, parts, rtol=1e-6)
    big = net.evaluate(x, y, None, 1000, None)
    np.testing.assert_allclose(big, net.evaluate(x, y, None, 10, None), rtol=0)
    order = np.arange(10, dtype=np.int64)
    start = copies(params)
    a = net.train_epoch(x, y, None, order, 1000, opt, None)
    after_big = copies(params)
    for p, s in zip(params, start):
        p[...] = s
    net2, params2, opt2 = fresh(dtype)
    b = net2.train_epoch(x, y, None, order, 10, opt2, None)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(after_big[0], params2[0])


@DTYPES
def test_predict_matches_evaluate_output(dtype):
    x, y = make_data(dtype, 7, 4, 3, "mean_squared_error")
    net, params, opt = fresh(dtype, dropout={0: (0.5, 1)}, loss="mean_squared_error")
    out = np.zeros((7, 3), dtype)
    net.predict(x, 3, out, None)
    hidden = np.maximum(x @ params[0] + params[1], 0) @ params[2] + params[3]
    want = np.exp(hidden - hidden.max(1, keepdims=True))
    np.testing.assert_allclose(out, want / want.sum(1, keepdims=True), rtol=1e-5)
    loss = net.evaluate(x, y, None, 7, None)[1] / 7
    assert loss == pytest.approx(np.mean((out - y) ** 2), rel=1e-5)


@DTYPES
def test_runs_are_bit_identical(dtype):
    x, y = make_data(dtype, 50, 4, 3, "categorical_crossentropy")
    results = []
    for _ in range(2):
        net, params, opt = fresh(dtype, dropout={0: (0.25, 9)}, kind="nadam")
        rng = np.random.default_rng(0)
        sums = [net.train_epoch(x, y, None, rng.permutation(50).astype(np.int64), 8, opt, None)
                for _ in range(3)]
        results.append((sums, copies(params), opt.iterations, opt.m_schedule))
    (s1, p1, i1, m1), (s2, p2, i2, m2) = results
    np.testing.assert_array_equal(s1, s2)
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a, b)
    assert i1 == i2 == 21 and m1 == m2 != 1.0


def test_no_op_and_dropout_only_chains():
    x, y = make_data(np.float64, 5, 3, 3, "mean_squared_error")
    for ops in ([], [("activation", "tanh")], [("dropout", 0.5, 1)]):
        net = Network(ops, "mean_squared_error", ["mean_absolute_error"], np.float64)
        sums = net.train_epoch(x, y, None, np.arange(5, dtype=np.int64), 2, Optimizer("sgd", []), None)
        assert sums[0] == 5 and np.isfinite(sums).all()
        out = np.zeros((5, 3))
        net.predict(x, 2, out, None)
        np.testing.assert_allclose(out, np.tanh(x) if ops and ops[0][0] == "activation" else x)


def test_gil_is_released_during_train_epoch():
    ops, params = make_ops(np.float32, [200, 256, 10], ["relu", "softmax"])
    net = Network(ops, "categorical_crossentropy", [], np.float32)
    x, y = make_data(np.float32, 4000, 200, 10, "categorical_crossentropy")
    order = np.arange(4000, dtype=np.int64)
    opt = Optimizer("adam", params)
    counter, running = [0], [True]

    def count():
        while running[0]:
            counter[0] += 1

    thread = threading.Thread(target=count)
    thread.start()
    try:
        time.sleep(0.01)
        for _ in range(20):  # a long enough call: progress made by the thread during it proves the release
            start = time.perf_counter()
            before = counter[0]
            net.train_epoch(x, y, None, order, 32, opt, None)
            progress = counter[0] - before
            if time.perf_counter() - start > 0.05:
                break
    finally:
        running[0] = False
        thread.join()
    assert progress > 1000


def test_ctrl_c_interrupts_a_call_without_hook():
    ops, params = make_ops(np.float32, [50, 64, 10], ["relu", "softmax"])
    net = Network(ops, "categorical_crossentropy", [], np.float32)
    x, y = make_data(np.float32, 2000, 50, 10, "categorical_crossentropy")
    order = np.arange(2000, dtype=np.int64)
    opt = Optimizer("sgd", params)
    timer = threading.Timer(0.05, _thread.interrupt_main)
    with pytest.raises(KeyboardInterrupt):
        timer.start()  # inside the block: under load the timer may fire before the first call
        for _ in range(10000):
            net.train_epoch(x, y, None, order, 1, opt, None)
    timer.join()
    assert opt.iterations > 0  # written back on the way out
    sums = net.train_epoch(x[:10], y[:10], None, order[:10], 5, opt, None)
    assert sums[0] == 10


def test_numeric_trouble_is_returned_not_raised():
    ops, params = make_ops(np.float64, [3, 4, 2], ["exponential", "linear"], scale=400.0)
    net = Network(ops, "mean_squared_error", ["mean_absolute_error"], np.float64)
    x, y = make_data(np.float64, 6, 3, 2, "mean_squared_error")
    x *= 10
    with np.errstate(all="ignore"):
        sums = net.train_epoch(x, y, None, np.arange(6, dtype=np.int64), 3, Optimizer("adam", params), None)
    assert sums[0] == 6 and not np.isfinite(sums[1])
