"""The reference Network: a whole epoch against a hand-written float64 computation, evaluate/predict, and
the sample-weight rule through the loop."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastfit._reference.loop import Network
from ref_helpers import StubOptimizer, keep_py

N, N_IN, HIDDEN, UNITS, BS = 10, 4, 5, 3, 4
DROP_RATE, DROP_SEED = 0.25, 7


def setup(dtype, bias2=True, seed=0):
    rng = np.random.default_rng(seed)
    W1 = rng.normal(size=(N_IN, HIDDEN)).astype(dtype) * dtype(0.5)
    b1 = rng.normal(size=HIDDEN).astype(dtype) * dtype(0.1)
    W2 = rng.normal(size=(HIDDEN, UNITS)).astype(dtype) * dtype(0.5)
    b2 = rng.normal(size=UNITS).astype(dtype) * dtype(0.1) if bias2 else None
    x = rng.normal(size=(N, N_IN)).astype(dtype)
    labels = rng.integers(0, UNITS, N)
    y = np.eye(UNITS, dtype=dtype)[labels]
    w = rng.uniform(0.5, 2.0, N).astype(dtype)
    w[3] = 0
    order = rng.permutation(N).astype(np.int64)
    return [W1, b1, W2, b2], x, y, labels.astype(np.int64), w, order


def hand_epoch(params, x, y, w, order, mode, t0=0):
    """One epoch in float64 written out by hand: Dense-relu-Dropout-Dense-(softmax|linear), then
    CCE (fused) + SGD(lr 0.1, momentum 0.9) or MSE + Adam(lr 0.01). Returns (params, sums, iterations)."""
    W1, b1, W2, b2 = [None if p is None else p.astype(np.float64) for p in params]
    x, y, w = x.astype(np.float64), y.astype(np.float64), w.astype(np.float64)
    slots = [[np.zeros_like(p), np.zeros_like(p)] for p in (W1, b1, W2, b2) if p is not None]
    t, seen, loss_sum, acc_sum = t0, 0, 0.0, 0.0
    for start in range(0, N, BS):
        idx = order[start:start + BS]
        xb, yb, wb, rows = x[idx], y[idx], w[idx], len(idx)
        z1 = xb @ W1 + b1
        h1 = np.maximum(z1, 0)
        keep = np.array([[keep_py(DROP_SEED, t, r * HIDDEN + c, DROP_RATE) for c in range(HIDDEN)]
                         for r in range(rows)])
        mask = keep / (1 - DROP_RATE)
        h2 = h1 * mask
        z2 = h2 @ W2 + (b2 if b2 is not None else 0)
        factor = wb / np.count_nonzero(wb)
        if mode == "cce":
            e = np.exp(z2 - z2.max(1, keepdims=True))
            out = e / e.sum(1, keepdims=True)
            per = -np.sum(yb * np.log(out), 1)
            dz2 = (out - yb) * factor[:, None]
        else:
            out = z2
            per = np.mean((out - yb) ** 2, 1)
            dz2 = 2 * (out - yb) / UNITS * factor[:, None]
        loss_sum += np.sum(factor * per) * rows
        acc_sum += np.mean(out.argmax(1) == yb.argmax(1)) * rows
        seen += rows
        dW2 = h2.T @ dz2
        dh1 = (dz2 @ W2.T) * mask * (z1 > 0)
        grads = [xb.T @ dh1, dh1.sum(0), dW2] + ([dz2.sum(0)] if b2 is not None else [])
        params64 = [W1, b1, W2] + ([b2] if b2 is not None else [])
        for p, g, (s0, s1) in zip(params64, grads, slots):
            if mode == "cce":
                s0[...] = 0.9 * s0 - 0.1 * g
                p += s0
            else:
                s0[...] = 0.9 * s0 + 0.1 * g
                s1[...] = 0.999 * s1 + 0.001 * g * g
                lr_a = 0.01 * np.sqrt(1 - 0.999 ** (t + 1)) / (1 - 0.9 ** (t + 1))
                p -= lr_a * s0 / (np.sqrt(s1) + 1e-7)
        t += 1
    return [W1, b1, W2, b2], np.array([seen, loss_sum, acc_sum]), t


def make_net(params, dtype, mode, metrics=("categorical_accuracy",)):
    W1, b1, W2, b2 = params
    ops = [("dense", W1, b1), ("activation", "relu"), ("dropout", DROP_RATE, DROP_SEED), ("dense", W2, b2),
           ("activation", "softmax" if mode == "cce" else "linear")]
    loss = "categorical_crossentropy" if mode == "cce" else "mean_squared_error"
    return Network(ops, loss, list(metrics), dtype)


@pytest.mark.parametrize("mode,kind,bias2", [("cce", "sgd", True), ("mse", "adam", False)])
def test_train_epoch_matches_hand_computation(mode, kind, bias2, dtype):
    params, x, y, _, w, order = setup(dtype, bias2)
    expected, sums_expected, t_expected = hand_epoch(params, x, y, w, order, mode, t0=3)
    live = [p for p in params if p is not None]
    opt = StubOptimizer(kind, live, **(dict(lr=0.1, momentum=0.9) if kind == "sgd" else dict(lr=0.01)))
    opt.iterations = 3
    ids = [id(p) for p in live]
    sums = make_net(params, dtype, mode).train_epoch(x, y, w, order, BS, opt, None)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    assert sums.dtype == np.float64
    np.testing.assert_allclose(sums, sums_expected, **tol)
    assert opt.iterations == t_expected == 6  # batches of 4, 4 and a partial 2
    assert [id(p) for p in live] == ids  # updated in place, never replaced
    for got, want in zip(live, [p for p in expected if p is not None]):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol)


def test_evaluate_and_predict_are_deterministic_and_in_row_order(dtype):
    params, x, y, labels, w, _ = setup(dtype)
    net = make_net(params, dtype, "cce", metrics=["categorical_accuracy", "categorical_crossentropy"])
    W1, b1, W2, b2 = [p.astype(np.float64) for p in params]
    z = np.maximum(x.astype(np.float64) @ W1 + b1, 0) @ W2 + b2  # no dropout outside training
    e = np.exp(z - z.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    out = np.zeros((N, UNITS), dtype)
    assert net.predict(x, 3, out, None) is None
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, p, rtol=tol, atol=tol)
    per = -np.sum(y * np.log(p), 1)
    batches = [slice(0, 4), slice(4, 8), slice(8, 10)]
    loss_sum = sum(np.sum(w[b] * per[b]) / np.count_nonzero(w[b]) * len(per[b]) for b in batches)
    acc = np.mean(p.argmax(1) == labels) * N
    sums = net.evaluate(x, y, w, BS, None)
    np.testing.assert_allclose(sums, [N, loss_sum, acc, per.sum()], rtol=tol * 10)
    np.testing.assert_array_equal(net.evaluate(x, y, w, BS, None), sums)


def test_sparse_labels_match_one_hot_targets(dtype):
    params, x, y, labels, _, order = setup(dtype)
    results = []
    for loss, targets, metric in [("categorical_crossentropy", y, "categorical_accuracy"),
                                  ("sparse_categorical_crossentropy", labels, "sparse_categorical_accuracy")]:
        ps = [p.copy() for p in params]
        ops = [("dense", ps[0], ps[1]), ("activation", "tanh"), ("dense", ps[2], ps[3]), ("activation", "softmax")]
        opt = StubOptimizer("adam", ps)
        sums = Network(ops, loss, [metric], dtype).train_epoch(x, targets, None, order, BS, opt, None)
        results.append((sums, ps))
    (s1, p1), (s2, p2) = results
    np.testing.assert_allclose(s1, s2, rtol=1e-6)
    for a, b in zip(p1, p2):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_unweighted_equals_unit_weights_and_zero_weights_do_not_train(dtype):
    params, x, y, _, _, order = setup(dtype)
    outcomes = []
    for weights in (None, np.ones(N, dtype), np.zeros(N, dtype)):
        ps = [p.copy() for p in params]
        opt = StubOptimizer("sgd", ps, lr=0.1)
        sums = make_net(ps, dtype, "cce").train_epoch(x, y, weights, order, BS, opt, None)
        outcomes.append((sums, ps))
    np.testing.assert_allclose(outcomes[0][0], outcomes[1][0], rtol=1e-6)
    for a, b, orig in zip(outcomes[0][1], outcomes[1][1], params):
        np.testing.assert_allclose(a, b, rtol=1e-6)
        assert not np.allclose(a, orig)
    assert outcomes[2][0][1] == 0  # every weight 0: loss 0 and no update
    for a, orig in zip(outcomes[2][1], params):
        np.testing.assert_array_equal(a, orig)


def test_gathered_batches_match_contiguous_batches(dtype):
    # Reversing the rows inside each batch takes the gather path instead of the slice path; without
    # dropout (whose mask follows the position in the batch) the updates agree up to summation order.
    params, x, y, _, w, _ = setup(dtype)
    perm = np.concatenate([np.arange(s, min(s + BS, N))[::-1] for s in range(0, N, BS)]).astype(np.int64)
    results = []
    for order in (np.arange(N, dtype=np.int64), perm):
        ps = [p.copy() for p in params]
        ops = [("dense", ps[0], ps[1]), ("activation", "relu"), ("dense", ps[2], ps[3]), ("activation", "softmax")]
        sums = Network(ops, "categorical_crossentropy", ["categorical_accuracy"], dtype).train_epoch(
            x, y, w, order, BS, StubOptimizer("rmsprop", ps), None)
        results.append((sums, ps))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    for a, b, orig in zip(results[0][1], results[1][1], params):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert not np.allclose(a, orig)


def test_empty_input_returns_zero_sums(dtype):
    params, _, _, _, _, _ = setup(dtype)
    net = make_net(params, dtype, "cce")
    x = np.zeros((0, N_IN), dtype)
    y = np.zeros((0, UNITS), dtype)
    opt = StubOptimizer("sgd", [p for p in params], lr=0.1)
    np.testing.assert_array_equal(net.train_epoch(x, y, None, np.zeros(0, np.int64), 4, opt, None), [0, 0, 0])
    assert opt.iterations == 0


def test_ops_without_dense_take_their_width_from_x(dtype):
    net = Network([("activation", "softmax")], "categorical_crossentropy", [], dtype)
    x = np.array([[0.0, 1.0, 2.0]], dtype)
    out = np.zeros_like(x)
    net.predict(x, 8, out, None)
    np.testing.assert_allclose(out.sum(), 1, rtol=1e-6)
    with pytest.raises(ValueError, match=r"x: expected 3 features per row, got shape \(1, 2\)"):
        net.predict(x[:, :2].copy(), 8, out[:, :2].copy(), None)


def test_divergence_returns_nan_without_warnings(dtype):
    import warnings
    params, x, y, _, _, order = setup(dtype)
    opt = StubOptimizer("sgd", [p for p in params], lr=1e30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_net(params, dtype, "mse").train_epoch(x, y, None, order, 2, opt, None)
        sums = make_net(params, dtype, "mse").evaluate(x, y, None, 4, None)
    assert not np.isfinite(sums[1])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 30), batch_size=st.integers(1, 40))
def test_unweighted_evaluate_sums_do_not_depend_on_batching(n, batch_size):
    # Without weights each batch contributes mean * size = the sum of its per-sample values.
    params, x, y, _, _, _ = setup(np.float64)
    x, y = np.resize(x, (n, N_IN)), np.resize(y, (n, UNITS))
    net = make_net(params, np.float64, "cce", metrics=["categorical_accuracy", "categorical_crossentropy"])
    whole = net.evaluate(x, y, None, n, None)
    np.testing.assert_allclose(net.evaluate(x, y, None, batch_size, None), whole, rtol=1e-12)
    assert whole[0] == n
    out = np.zeros((n, UNITS))
    net.predict(x, batch_size, out, None)
    np.testing.assert_allclose(whole[3], -np.sum(y * np.log(out)), rtol=1e-12)
