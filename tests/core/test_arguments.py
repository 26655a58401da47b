"""Bad calls raise ValueError (naming the argument) before any GIL-free code runs; nothing is modified."""
import numpy as np
import pytest

from core_helpers import Network, Optimizer, copies, make_data, make_ops


def setup(loss="categorical_crossentropy", dtype=np.float32):
    ops, params = make_ops(dtype, [3, 4, 3], ["relu", "softmax"])
    x, y = make_data(dtype, 6, 3, 3, loss)
    return Network(ops, loss, [], dtype), params, x, y, Optimizer("adam", params)


def call(net, x, y, opt, w=None, order=None, batch_size=2, hook=None):
    order = np.arange(len(x), dtype=np.int64) if order is None else order
    return net.train_epoch(x, y, w, order, batch_size, opt, hook)


@pytest.mark.parametrize("change, match", [
    (dict(x="f64"), "x: expected dtype float32"),
    (dict(x="fortran"), "x: expected a C-contiguous"),
    (dict(x="wide"), "x: expected 3 features"),
    (dict(x="list"), "x: expected a NumPy array"),
    (dict(y="short"), r"y: expected shape \(6, 3\)"),
    (dict(y="f64"), "y: expected dtype float32"),
    (dict(w="long"), r"sample_weight: expected shape \(6,\)"),
    (dict(order="int32"), "order: expected a NumPy array of int64"),
    (dict(order="high"), r"order: expected values in \[0, 6\)"),
    (dict(order="negative"), r"order: expected values in \[0, 6\)"),
    (dict(order="matrix"), r"order: expected a 1-D array"),
    (dict(batch_size=0), "batch_size: expected an integer >= 1"),
    (dict(batch_size=2.0), "batch_size: expected an integer >= 1"),
    (dict(hook="nocallable"), "hook: expected None or a callable"),
    (dict(hook="noattrs"), "hook: expected attributes"),
])
def test_bad_train_arguments(change, match):
    net, params, x, y, opt = setup()
    kwargs = {}
    if change.get("x") == "f64":
        x = x.astype(np.float64)
    elif change.get("x") == "fortran":
        x = np.asfortranarray(np.zeros((6, 3), np.float32))
    elif change.get("x") == "wide":
        x = np.zeros((6, 4), np.float32)
    elif change.get("x") == "list":
        x = x.tolist()
    if change.get("y") == "short":
        y = y[:5]
    elif change.get("y") == "f64":
        y = y.astype(np.float64)
    if change.get("w") == "long":
        kwargs["w"] = np.ones(7, np.float32)
    order = {"int32": np.arange(6, dtype=np.int32), "high": np.array([0, 1, 2, 3, 4, 6]),
             "negative": np.array([0, 1, 2, 3, 4, -1]), "matrix": np.arange(6).reshape(2, 3)}.get(change.get("order"))
    if order is not None:
        kwargs["order"] = order.astype(np.int32) if change["order"] == "int32" else order.astype(np.int64)
    if "batch_size" in change:
        kwargs["batch_size"] = change["batch_size"]
    if change.get("hook") == "nocallable":
        kwargs["hook"] = object()
    elif change.get("hook") == "noattrs":
        kwargs["hook"] = lambda *a: None
    before = copies(params)
    with pytest.raises(ValueError, match=match):
        call(net, x, y, opt, **kwargs)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p, b)
    assert opt.iterations == 0


def test_sparse_labels_checked():
    net, params, x, y, opt = setup("sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"y \(sparse labels\): expected values in \[0, 3\)"):
        call(net, x, np.array([0, 1, 2, 3, 0, 1], np.int64), opt)
    with pytest.raises(ValueError, match="y: expected a NumPy array of int64"):
        call(net, x, y.astype(np.float32), opt)


@pytest.mark.parametrize("attr, value, match", [
    ("kind", "lbfgs", "optimizer.kind"),
    ("lr", "fast", "optimizer.lr"),
    ("iterations", -1, "optimizer.iterations"),
    ("slots", [], "optimizer.slots: expected a list of 4"),
])
def test_bad_optimizer(attr, value, match):
    net, params, x, y, opt = setup()
    setattr(opt, attr, value)
    with pytest.raises(ValueError, match=match):
        call(net, x, y, opt)


def test_bad_slot_arrays():
    net, params, x, y, opt = setup()
    opt.slots[1][0] = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match=r"optimizer.slots\[1\]\[0\]: expected shape"):
        call(net, x, y, opt)
    opt.slots[1] = [np.zeros(4, np.float32)]
    with pytest.raises(ValueError, match=r"optimizer.slots\[1\]: expected 2 arrays"):
        call(net, x, y, opt)
    opt.slots[1] = [np.zeros(4, np.float64)] * 2
    with pytest.raises(ValueError, match="expected dtype float32"):
        call(net, x, y, opt)


@pytest.mark.parametrize("ops, loss, metrics, match", [
    ([("dense", np.zeros((3, 4), np.float64), None)], "mean_squared_error", [], "ops.0. W: expected dtype"),
    ([("dense", np.zeros((3, 4), np.float32), np.zeros(3, np.float32))], "mean_squared_error", [],
     r"ops.0. b: expected shape \(4,\)"),
    ([("dense", np.zeros((3, 4), np.float32), None), ("dense", np.zeros((3, 2), np.float32), None)],
     "mean_squared_error", [], "ops.1. W: expected 4 input rows"),
    ([("activation", "swish")], "mean_squared_error", [], "activation: expected one of"),
    ([("dropout", 1.0, 0)], "mean_squared_error", [], "dropout rate"),
    ([("dropout", 0.5, -1)], "mean_squared_error", [], "dropout seed"),
    ([("conv", 3)], "mean_squared_error", [], "ops.0.: expected"),
    ([], "l2", [], "loss: expected one of"),
    ([], "mean_squared_error", ["f1"], "metrics: expected one of"),
    ([], "mean_squared_error", ["sparse_categorical_accuracy"], "sparse integer labels"),
    ([], "sparse_categorical_crossentropy", ["categorical_accuracy"], "sparse integer labels"),
])
def test_bad_constructor_arguments(ops, loss, metrics, match):
    with pytest.raises(ValueError, match=match):
        Network(ops, loss, metrics, np.float32)


def test_bad_dtype_and_predict_out():
    with pytest.raises(ValueError, match="dtype"):
        Network([], "mean_squared_error", [], np.int32)
    net, params, x, y, opt = setup()
    with pytest.raises(ValueError, match=r"out: expected shape \(6, 3\)"):
        net.predict(x, 2, np.zeros((6, 4), np.float32), None)
    with pytest.raises(ValueError, match="out: expected dtype float32"):
        net.predict(x, 2, np.zeros((6, 3)), None)


def test_read_only_parameters_rejected():
    ops, params = make_ops(np.float32, [3, 4, 3], ["relu", "softmax"])
    params[0].flags.writeable = False
    with pytest.raises(ValueError, match="ops.0. W: expected a writeable array"):
        Network(ops, "categorical_crossentropy", [], np.float32)


def test_overlapping_calls_rejected():
    net, params, x, y, opt = setup()

    class Reenter:
        batch_begin, batch_end, end_interval = False, True, 0.0

        def __call__(self, phase, batch, size, stats):
            net.evaluate(x, y, None, 2, None)

    with pytest.raises(RuntimeError, match="already running"):
        call(net, x, y, opt, hook=Reenter())
    assert opt.iterations == 1
    assert call(net, x, y, opt)[0] == 6  # usable again afterwards
