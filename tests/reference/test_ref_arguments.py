"""Bad arguments to the reference Network give ValueErrors naming the argument, what was expected and what
was given."""
import numpy as np
import pytest

from fastfit._reference.loop import Network
from ref_helpers import RecordingHook, StubOptimizer


def parts(dtype=np.float32):
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(3, 2)).astype(dtype), np.zeros(2, dtype)
    x, y = rng.normal(size=(5, 3)).astype(dtype), np.eye(2, dtype=dtype)[[0, 1, 0, 1, 1]]
    return W, b, x, y


def net_and_data(loss="categorical_crossentropy", metrics=()):
    W, b, x, y = parts()
    net = Network([("dense", W, b), ("activation", "softmax")], loss, list(metrics), np.float32)
    return net, x, y, StubOptimizer("sgd", [W, b], momentum=0.9)


@pytest.mark.parametrize("make,message", [
    (lambda W, b: ([("dense", W, b)], "mse", [], np.float32), r"loss: expected one of .* got 'mse'"),
    (lambda W, b: ([("dense", W, b)], "mean_squared_error", ["f1"], np.float32),
     r"metrics: expected one of .* got 'f1'"),
    (lambda W, b: ([("dense", W, b)], "mean_squared_error", "binary_accuracy", np.float32),
     r"metrics: expected a list of metric names"),
    (lambda W, b: ([("dense", W, b)], "mean_squared_error", ["sparse_categorical_accuracy"], np.float32),
     r"metrics: 'sparse_categorical_accuracy' cannot be used with the loss 'mean_squared_error'"),
    (lambda W, b: ([("dense", W, b)], "sparse_categorical_crossentropy", ["categorical_accuracy"], np.float32),
     r"metrics: 'categorical_accuracy' cannot be used with the loss"),
    (lambda W, b: ([("dense", W, b)], "mean_squared_error", [], np.int32),
     r"dtype: expected numpy.float32 or numpy.float64"),
    (lambda W, b: ([("dense", W, b)], "mean_squared_error", [], "banana"),
     r"dtype: expected numpy.float32 or numpy.float64, got 'banana'"),
    (lambda W, b: ({"dense": W}, "mean_squared_error", [], np.float32), r"ops: expected a list of tuples, got dict"),
    (lambda W, b: ([("conv", W)], "mean_squared_error", [], np.float32),
     r"ops\[0\]: expected \('dense', W, b\[, trainable\]\)"),
    (lambda W, b: ([("dense", W, b, "no")], "mean_squared_error", [], np.float32),
     r"ops\[0\] trainable: expected True or False, got 'no'"),
    (lambda W, b: ([("dense", W)], "mean_squared_error", [], np.float32), r"ops\[0\]: malformed 'dense' op"),
    (lambda W, b: ([("dense", W, b), ("activation", "gelu")], "mean_squared_error", [], np.float32),
     r"ops\[1\] activation: expected one of .* got 'gelu'"),
    (lambda W, b: ([("dense", W.astype(np.float64), b)], "mean_squared_error", [], np.float32),
     r"ops\[0\] W: expected dtype float32, got float64"),
    (lambda W, b: ([("dense", np.asfortranarray(np.ones((3, 2), np.float32)), b)], "mean_squared_error", [],
                   np.float32), r"ops\[0\] W: expected a C-contiguous array"),
    (lambda W, b: ([("dense", W, b[:1].copy())], "mean_squared_error", [], np.float32),
     r"ops\[0\] b: expected shape \(2,\), got \(1,\)"),
    (lambda W, b: ([("dense", W, b), ("dense", W, b)], "mean_squared_error", [], np.float32),
     r"ops\[1\] W: expected 2 input rows, got shape \(3, 2\)"),
    (lambda W, b: ([("dropout", 1.0, 0)], "mean_squared_error", [], np.float32),
     r"ops\[0\] dropout rate: expected a number in \[0, 1\), got 1.0"),
    (lambda W, b: ([("dropout", 0.5, -1)], "mean_squared_error", [], np.float32),
     r"ops\[0\] dropout seed: expected a non-negative int, got -1"),
])
def test_constructor_errors(make, message):
    W, b, _, _ = parts()
    with pytest.raises(ValueError, match=message):
        Network(*make(W, b))


def test_data_errors():
    net, x, y, opt = net_and_data()
    order = np.arange(5, dtype=np.int64)
    cases = [
        (dict(x=x.astype(np.float64)), r"x: expected dtype float32, got float64"),
        (dict(x=x[:, :2].copy()), r"x: expected 3 features per row, got shape \(5, 2\)"),
        (dict(x=[[0.0] * 3]), r"x: expected a NumPy array of float32, got list"),
        (dict(y=y[:4].copy()), r"y: expected shape \(5, 2\), got \(4, 2\)"),
        (dict(sample_weight=np.ones(4, np.float32)), r"sample_weight: expected shape \(5,\), got \(4,\)"),
        (dict(order=order.astype(np.int32)), r"order: expected a NumPy array of int64, got int32"),
        (dict(order=order + 1), r"order: expected values in \[0, 5\), got values in \[1, 5\]"),
        (dict(batch_size=0), r"batch_size: expected an integer >= 1, got 0"),
        (dict(batch_size=2.0), r"batch_size: expected an integer >= 1, got 2.0"),
        (dict(hook=object()), r"hook: expected None or a callable, got object"),
        (dict(hook=lambda *a: None), r"hook: expected attributes batch_begin, batch_end and end_interval"),
    ]
    for change, message in cases:
        args = dict(x=x, y=y, sample_weight=None, order=order, batch_size=2, optimizer=opt, hook=None)
        args.update(change)
        with pytest.raises(ValueError, match=message):
            net.train_epoch(**args)
    with pytest.raises(ValueError, match=r"out: expected shape \(5, 2\), got \(5, 3\)"):
        net.predict(x, 2, np.zeros((5, 3), np.float32), None)


def test_sparse_label_errors():
    net, x, _, _ = net_and_data("sparse_categorical_crossentropy", ["sparse_categorical_accuracy"])
    with pytest.raises(ValueError, match=r"y: expected a NumPy array of int64, got float32"):
        net.evaluate(x, np.zeros(5, np.float32), None, 2, None)
    with pytest.raises(ValueError, match=r"y \(sparse labels\): expected values in \[0, 2\), got values in \[0, 2\]"):
        net.evaluate(x, np.array([0, 1, 2, 0, 1]), None, 2, None)


def test_optimizer_errors():
    net, x, y, _ = net_and_data()
    W, b, _, _ = parts()
    order = np.arange(5, dtype=np.int64)
    bad = StubOptimizer("sgd", [W], momentum=0.9)
    with pytest.raises(ValueError, match=r"optimizer.slots: expected a list of 2 entries .* got 1"):
        net.train_epoch(x, y, None, order, 2, bad, None)
    bad = StubOptimizer("adam", [W, b])
    bad.slots[1][1] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"optimizer.slots\[1\]\[1\]: expected shape \(2,\), got \(3,\)"):
        net.train_epoch(x, y, None, order, 2, bad, None)
    bad = StubOptimizer("adam", [W, b])
    bad.iterations = -1
    with pytest.raises(ValueError, match=r"optimizer.iterations: expected a non-negative int, got -1"):
        net.train_epoch(x, y, None, order, 2, bad, None)
    # sgd without momentum needs no slot arrays at all
    plain = StubOptimizer("sgd", [W, b])
    plain.slots = [[], []]
    net.train_epoch(x, y, None, order, 2, plain, RecordingHook())
    assert plain.iterations == 3
