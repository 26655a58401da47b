"""Every call the contract refuses is refused by both engines with the same exception and the same words.

Each case builds its own inputs (seeded, so both engines see equal arrays) and makes one bad call; the
reference `Network` and the Cython one must raise the same exception type with the same message.
"""
import numpy as np
import pytest

from fastfit._reference.loop import Network as ReferenceNetwork
from fastfit.core import compiled_core

CythonNetwork = compiled_core()
F32 = np.float32
LOSS = "categorical_crossentropy"


class Optimizer:
    """The optimizer object the engines read, with zero slots for `params`."""

    def __init__(self, kind, params, count=2, **hyper):
        self.kind, self.lr, self.decay, self.epsilon = kind, 0.01, 0.0, 1e-7
        self.momentum, self.nesterov, self.rho = 0.0, False, 0.9
        self.beta_1, self.beta_2, self.amsgrad, self.schedule_decay = 0.9, 0.999, False, 0.004
        self.iterations, self.m_schedule = 0, 1.0
        for key, value in hyper.items():
            setattr(self, key, value)
        self.slots = [[np.zeros_like(p) for _ in range(count)] for p in params]


class Hook:
    def __init__(self, begin=True, end=True, interval=0.0, **extra):
        self.batch_begin, self.batch_end, self.end_interval = begin, end, interval
        for key, value in extra.items():
            setattr(self, key, value)

    def __call__(self, phase, batch, size, stats):
        return False


def arrays(dtype=F32, n_in=3, hidden=4, units=3, n=6):
    """Seeded (W0, b0, W1, b1, x, y one-hot) for a 3-4-3 chain."""
    rng = np.random.default_rng(0)
    W0 = rng.normal(size=(n_in, hidden)).astype(dtype)
    b0 = np.zeros(hidden, dtype)
    W1 = rng.normal(size=(hidden, units)).astype(dtype)
    b1 = np.zeros(units, dtype)
    x = rng.normal(size=(n, n_in)).astype(dtype)
    y = np.eye(units, dtype=dtype)[rng.integers(0, units, n)]
    return W0, b0, W1, b1, x, y


def chain(W0, b0, W1, b1):
    return [("dense", W0, b0), ("activation", "relu"), ("dense", W1, b1), ("activation", "softmax")]


def read_only(arr):
    arr.flags.writeable = False
    return arr


# ---------------------------------------------------------------------------------------------------------
# Constructor calls: (ops maker, loss, metrics, dtype, confusion). The ops maker takes the seeded arrays.

def _ops(make):
    return lambda: make(*arrays()[:4])


CONSTRUCTOR = {
    # dtype
    "dtype int32": (_ops(chain), LOSS, [], np.int32, ()),
    "dtype float16": (_ops(chain), LOSS, [], np.float16, ()),
    "dtype banana": (_ops(chain), LOSS, [], "banana", ()),
    "dtype None (float64) with float32 arrays": (_ops(chain), LOSS, [], None, ()),
    # loss
    "loss unknown": (_ops(chain), "mse", [], F32, ()),
    "loss not a str": (_ops(chain), 3, [], F32, ()),
    # metrics
    "metrics a str": (_ops(chain), LOSS, "accuracy", F32, ()),
    "metrics an iterator": (_ops(chain), LOSS, iter(["categorical_accuracy"]), F32, ()),
    "metrics a set": (_ops(chain), LOSS, {"categorical_accuracy"}, F32, ()),
    "metrics None": (_ops(chain), LOSS, None, F32, ()),
    "metrics unknown name": (_ops(chain), LOSS, ["f1"], F32, ()),
    "metrics sparse with dense loss": (_ops(chain), LOSS, ["sparse_categorical_accuracy"], F32, ()),
    "metrics dense with sparse loss": (_ops(chain), "sparse_categorical_crossentropy", ["categorical_accuracy"],
                                       F32, ()),
    "metrics bad threshold": (_ops(chain), LOSS, [("binary_accuracy", "half")], F32, ()),
    "metrics nan threshold": (_ops(chain), LOSS, [("binary_accuracy", float("nan"))], F32, ()),
    "metrics bad k": (_ops(chain), LOSS, [("top_k_categorical_accuracy", 0)], F32, ()),
    "metrics bool k": (_ops(chain), LOSS, [("top_k_categorical_accuracy", True)], F32, ()),
    "metrics param on plain metric": (_ops(chain), LOSS, [("categorical_accuracy", 1)], F32, ()),
    "metrics 3-tuple": (_ops(chain), LOSS, [("binary_accuracy", 0.5, 1)], F32, ()),
    # confusion
    "confusion a str": (_ops(chain), LOSS, [], F32, "auc"),
    "confusion with sparse loss": (_ops(chain), "sparse_categorical_crossentropy", [], F32,
                                   [((0.5,), -1, 0)]),
    "confusion not a triple": (_ops(chain), LOSS, [], F32, [((0.5,), -1)]),
    "confusion unsorted": (_ops(chain), LOSS, [], F32, [((0.6, 0.5), -1, 0)]),
    "confusion empty thresholds": (_ops(chain), LOSS, [], F32, [((), -1, 0)]),
    "confusion nan threshold": (_ops(chain), LOSS, [], F32, [((float("nan"),), -1, 0)]),
    "confusion bool class_id": (_ops(chain), LOSS, [], F32, [((0.5,), True, 0)]),
    "confusion negative top_k": (_ops(chain), LOSS, [], F32, [((0.5,), -1, -1)]),
    "confusion class_id -2": (_ops(chain), LOSS, [], F32, [((0.5,), -2, 0)]),
    # the op list
    "ops a dict": (lambda: {"dense": 1}, LOSS, [], F32, ()),
    "ops None": (lambda: None, LOSS, [], F32, ()),
    "op a list": (_ops(lambda W0, b0, W1, b1: [["dense", W0, b0]]), LOSS, [], F32, ()),
    "op empty": (lambda: [()], LOSS, [], F32, ()),
    "op unknown kind": (lambda: [("conv", 3)], LOSS, [], F32, ()),
    "dense too short": (_ops(lambda W0, b0, W1, b1: [("dense", W0)]), LOSS, [], F32, ()),
    "dense too long": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0, True, 1)]), LOSS, [], F32, ()),
    "dense W float64": (_ops(lambda W0, b0, W1, b1: [("dense", W0.astype(np.float64), b0)]), LOSS, [], F32, ()),
    "dense W a list": (_ops(lambda W0, b0, W1, b1: [("dense", W0.tolist(), b0)]), LOSS, [], F32, ()),
    "dense W 1-D": (_ops(lambda W0, b0, W1, b1: [("dense", W0.ravel(), b0)]), LOSS, [], F32, ()),
    "dense W Fortran": (_ops(lambda W0, b0, W1, b1: [("dense", np.asfortranarray(W0), b0)]), LOSS, [], F32, ()),
    "dense W read-only": (_ops(lambda W0, b0, W1, b1: chain(read_only(W0), b0, W1, b1)), LOSS, [], F32, ()),
    "dense b read-only": (_ops(lambda W0, b0, W1, b1: chain(W0, b0, W1, read_only(b1))), LOSS, [], F32, ()),
    "dense b wrong shape": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b1)]), LOSS, [], F32, ()),
    "dense b float64": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0.astype(np.float64))]), LOSS, [], F32, ()),
    "dense widths do not chain": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0), ("dense", W0, b0)]), LOSS, [],
                                  F32, ()),
    "dense trainable a str": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0, "no")]), LOSS, [], F32, ()),
    "dense trainable an int": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0, 1)]), LOSS, [], F32, ()),
    "activation unknown": (lambda: [("activation", "gelu")], LOSS, [], F32, ()),
    "activation not a str": (lambda: [("activation", 1)], LOSS, [], F32, ()),
    "activation malformed": (lambda: [("activation", "relu", 1)], LOSS, [], F32, ()),
    "dropout rate 1": (lambda: [("dropout", 1.0, 0)], LOSS, [], F32, ()),
    "dropout rate negative": (lambda: [("dropout", -0.1, 0)], LOSS, [], F32, ()),
    "dropout rate False": (lambda: [("dropout", False, 0)], LOSS, [], F32, ()),
    "dropout rate True": (lambda: [("dropout", True, 0)], LOSS, [], F32, ()),
    "dropout rate a str": (lambda: [("dropout", "0.5", 0)], LOSS, [], F32, ()),
    "dropout rate nan": (lambda: [("dropout", float("nan"), 0)], LOSS, [], F32, ()),
    "dropout seed negative": (lambda: [("dropout", 0.5, -1)], LOSS, [], F32, ()),
    "dropout seed True": (lambda: [("dropout", 0.5, True)], LOSS, [], F32, ()),
    "dropout seed a float": (lambda: [("dropout", 0.5, 1.5)], LOSS, [], F32, ()),
    "dropout malformed": (lambda: [("dropout", 0.5)], LOSS, [], F32, ()),
    # the layer ops
    "penalty on a foreign array": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0), ("penalty", W1, 0.1, 0.0)]),
                                   LOSS, [], F32, ()),
    "penalty before its op": (_ops(lambda W0, b0, W1, b1: [("penalty", W0, 0.1, 0.0), ("dense", W0, b0)]),
                              LOSS, [], F32, ()),
    "two penalties on one array": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0), ("penalty", W0, 0.1, 0.0),
                                                                ("penalty", W0, 0.0, 0.1)]), LOSS, [], F32, ()),
    "penalty negative l1": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0), ("penalty", W0, -0.1, 0.0)]),
                            LOSS, [], F32, ()),
    "penalty malformed": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0), ("penalty", W0, 0.1)]), LOSS, [], F32,
                          ()),
    "constraint unknown kind": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0),
                                                             ("constraint", W0, "l2", 2.0, 0.0, 1.0, 0)]),
                                LOSS, [], F32, ()),
    "constraint bad axis": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0),
                                                         ("constraint", W0, "max_norm", 2.0, 0.0, 1.0, 2)]),
                            LOSS, [], F32, ()),
    "constraint min above max": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0),
                                                              ("constraint", W0, "min_max_norm", 1.0, 2.0, 1.0, 0)]),
                                 LOSS, [], F32, ()),
    "constraint on a foreign array": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0),
                                                                   ("constraint", W1, "non_neg", 0.0, 0.0, 1.0, 0)]),
                                      LOSS, [], F32, ()),
    "relu bad negative_slope": (lambda: [("relu", "a", None, 0.0)], LOSS, [], F32, ()),
    "relu negative max_value": (lambda: [("relu", 0.0, -1.0, 0.0)], LOSS, [], F32, ()),
    "elu bool alpha": (lambda: [("elu", True)], LOSS, [], F32, ()),
    "prelu malformed": (lambda: [("prelu",)], LOSS, [], F32, ()),
    "prelu alpha 2-D": (lambda: [("prelu", np.zeros((2, 2), F32))], LOSS, [], F32, ()),
    "prelu alpha read-only": (lambda: [("prelu", read_only(np.zeros(4, F32)))], LOSS, [], F32, ()),
    "prelu trainable a str": (lambda: [("prelu", np.zeros(4, F32), "yes")], LOSS, [], F32, ()),
    "prelu width does not chain": (_ops(lambda W0, b0, W1, b1: [("dense", W0, b0), ("prelu", np.zeros(3, F32))]),
                                   LOSS, [], F32, ()),
    "batch_normalization epsilon 0": (lambda: [("batch_normalization", None, None, np.zeros(4, F32),
                                                np.ones(4, F32), 0.99, 0.0)], LOSS, [], F32, ()),
    "batch_normalization variance shape": (lambda: [("batch_normalization", None, None, np.zeros(4, F32),
                                                     np.ones(3, F32), 0.99, 1e-3)], LOSS, [], F32, ()),
    "batch_normalization gamma float64": (lambda: [("batch_normalization", np.ones(4), None, np.zeros(4, F32),
                                                    np.ones(4, F32), 0.99, 1e-3)], LOSS, [], F32, ()),
    "gaussian_noise negative stddev": (lambda: [("gaussian_noise", -1.0, 0)], LOSS, [], F32, ()),
    "gaussian_dropout rate 1": (lambda: [("gaussian_dropout", 1.0, 0)], LOSS, [], F32, ()),
    "alpha_dropout seed negative": (lambda: [("alpha_dropout", 0.1, -3)], LOSS, [], F32, ()),
    "activity_regularization inf": (lambda: [("activity_regularization", float("inf"), 0.0)], LOSS, [], F32, ()),
}


# ---------------------------------------------------------------------------------------------------------
# Calls on a built network: each takes (Network class) and makes one bad call.

def _net(Network, loss=LOSS, metrics=(), confusion=(), kind="adam", count=2):
    W0, b0, W1, b1, x, y = arrays()
    net = Network(chain(W0, b0, W1, b1), loss, list(metrics), F32, confusion)
    if loss == "sparse_categorical_crossentropy":
        y = np.argmax(y, axis=1).astype(np.int64)
    return net, x, y, Optimizer(kind, [W0, b0, W1, b1], count=count)


def train(change=None, loss=LOSS, opt_change=None, confusion=(), kind="adam", count=2):
    """A train_epoch call with one argument spoiled by `change(args)` or the optimizer by `opt_change(opt)`."""
    def run(Network):
        net, x, y, opt = _net(Network, loss, confusion=confusion, kind=kind, count=count)
        args = dict(x=x, y=y, sample_weight=None, order=np.arange(len(x), dtype=np.int64), batch_size=2,
                    optimizer=opt, hook=None)
        if change is not None:
            change(args)
        if opt_change is not None:
            opt_change(opt)
        net.train_epoch(**args)
    return run


def evaluate(change):
    def run(Network):
        net, x, y, _ = _net(Network)
        args = dict(x=x, y=y, sample_weight=None, batch_size=2, hook=None)
        change(args)
        net.evaluate(**args)
    return run


def predict(change):
    def run(Network):
        net, x, _, _ = _net(Network)
        args = dict(x=x, batch_size=2, out=np.zeros((len(x), 3), F32), hook=None)
        change(args)
        net.predict(**args)
    return run


def setter(key, value):
    """Replace the argument `key` with `value`."""
    return lambda args: args.__setitem__(key, value)


def derived(key, make):
    """Replace the argument `key` with `make(args)`."""
    return lambda args: args.__setitem__(key, make(args))


def attr(name, value):
    return lambda opt: setattr(opt, name, value)


def slot(j, k, value):
    def change(opt):
        opt.slots[j][k] = value(opt.slots[j][k])
    return change


CALLS = {
    # data
    "x float64": train(derived("x", lambda a: a["x"].astype(np.float64))),
    "x Fortran": train(derived("x", lambda a: np.asfortranarray(a["x"]))),
    "x a list": train(derived("x", lambda a: a["x"].tolist())),
    "x 1-D": train(derived("x", lambda a: a["x"].ravel())),
    "x too wide": train(setter("x", np.zeros((6, 4), F32))),
    "y short": train(derived("y", lambda a: a["y"][:5])),
    "y float64": train(derived("y", lambda a: a["y"].astype(np.float64))),
    "y a list": train(derived("y", lambda a: a["y"].tolist())),
    "sparse labels out of range": train(setter("y", np.array([0, 1, 2, 3, 0, 1], np.int64)),
                                        loss="sparse_categorical_crossentropy"),
    "sparse labels negative": train(setter("y", np.array([0, 1, 2, -1, 0, 1], np.int64)),
                                    loss="sparse_categorical_crossentropy"),
    "sparse labels int32": train(setter("y", np.zeros(6, np.int32)), loss="sparse_categorical_crossentropy"),
    "sparse labels float": train(setter("y", np.zeros(6, F32)), loss="sparse_categorical_crossentropy"),
    "sample_weight long": train(setter("sample_weight", np.ones(7, F32))),
    "sample_weight float64": train(setter("sample_weight", np.ones(6))),
    "confusion class_id beyond the units": train(confusion=[((0.5,), 3, 0)]),
    "order int32": train(setter("order", np.arange(6, dtype=np.int32))),
    "order high": train(setter("order", np.array([0, 1, 2, 3, 4, 6], np.int64))),
    "order negative": train(setter("order", np.array([0, 1, 2, 3, 4, -1], np.int64))),
    "order 2-D": train(setter("order", np.arange(6, dtype=np.int64).reshape(2, 3))),
    "batch_size 0": train(setter("batch_size", 0)),
    "batch_size a float": train(setter("batch_size", 2.0)),
    "batch_size True": train(setter("batch_size", True)),
    # hooks
    "hook not callable": train(setter("hook", object())),
    "hook without attributes": train(setter("hook", lambda *a: None)),
    "hook.predictions wrong shape": train(setter("hook", Hook(predictions=np.zeros((3, 3), F32)))),
    "hook.predictions float64": train(setter("hook", Hook(predictions=np.zeros((2, 3))))),
    "hook.predictions read-only": train(setter("hook", Hook(predictions=read_only(np.zeros((2, 3), F32))))),
    "hook.predictions without batch ends": train(setter("hook", Hook(end=False,
                                                                     predictions=np.zeros((2, 3), F32)))),
    "hook.predictions with an interval": train(setter("hook", Hook(interval=1.0,
                                                                   predictions=np.zeros((2, 3), F32)))),
    "hook.end_calls not a triple": train(setter("hook", Hook(end_calls=(1, 2)))),
    "hook.end_calls wrong keys": train(setter("hook", Hook(end_calls=((), ("loss", "acc"), None)))),
    "hook.end_calls not callable": train(setter("hook", Hook(end_calls=((1,), ("loss",), None)))),
    "evaluate hook.end_calls wrong keys": evaluate(setter("hook", Hook(end_calls=((), (1,), None)))),
    # the optimizer
    "optimizer kind unknown": train(opt_change=attr("kind", "lbfgs")),
    "optimizer kind None": train(opt_change=attr("kind", None)),
    "optimizer lr a str": train(opt_change=attr("lr", "fast")),
    "optimizer lr missing": train(opt_change=attr("lr", None)),
    "optimizer beta_1 a list": train(opt_change=attr("beta_1", [0.9])),
    "optimizer m_schedule a str": train(opt_change=attr("m_schedule", "x"), kind="nadam"),
    "optimizer iterations negative": train(opt_change=attr("iterations", -1)),
    "optimizer iterations True": train(opt_change=attr("iterations", True)),
    "optimizer iterations a float": train(opt_change=attr("iterations", 1.0)),
    "optimizer iterations None": train(opt_change=attr("iterations", None)),
    "optimizer slots empty": train(opt_change=attr("slots", [])),
    "optimizer slots None": train(opt_change=attr("slots", None)),
    "optimizer slot entry short": train(opt_change=lambda opt: opt.slots.__setitem__(1, [opt.slots[1][0]])),
    "optimizer slot entry an array": train(opt_change=lambda opt: opt.slots.__setitem__(1, opt.slots[1][0])),
    "optimizer slot wrong shape": train(opt_change=slot(1, 0, lambda s: np.zeros(5, F32))),
    "optimizer slot float64": train(opt_change=slot(1, 0, lambda s: s.astype(np.float64))),
    "optimizer slot read-only": train(opt_change=slot(2, 1, read_only)),
    "optimizer amsgrad needs a third slot": train(opt_change=attr("amsgrad", True)),
    "optimizer sgd momentum needs a slot": train(opt_change=attr("momentum", 0.9), kind="sgd", count=0),
    # evaluate and predict
    "evaluate x float64": evaluate(derived("x", lambda a: a["x"].astype(np.float64))),
    "evaluate y short": evaluate(derived("y", lambda a: a["y"][:5])),
    "evaluate sample_weight 2-D": evaluate(setter("sample_weight", np.ones((6, 1), F32))),
    "evaluate batch_size -1": evaluate(setter("batch_size", -1)),
    "evaluate hook not callable": evaluate(setter("hook", 3)),
    "predict x too narrow": predict(setter("x", np.zeros((6, 2), F32))),
    "predict out wrong shape": predict(setter("out", np.zeros((6, 4), F32))),
    "predict out float64": predict(setter("out", np.zeros((6, 3)))),
    "predict out read-only": predict(setter("out", read_only(np.zeros((6, 3), F32)))),
    "predict out Fortran": predict(setter("out", np.asfortranarray(np.zeros((6, 3), F32)))),
    "predict out None": predict(setter("out", None)),
    "predict batch_size None": predict(setter("batch_size", None)),
    "predict hook without attributes": predict(setter("hook", lambda *a: None)),
}


def outcome(call, Network):
    """(exception type, message) of `call(Network)`; fails the test if it does not raise."""
    try:
        call(Network)
    except Exception as exc:  # noqa: BLE001 - the type is what the test compares
        return type(exc), str(exc)
    pytest.fail(f"{Network.__module__}.Network accepted the call")


needs_cython = pytest.mark.skipif(CythonNetwork is None, reason="the compiled extensions are not built")


@needs_cython
@pytest.mark.parametrize("case", list(CONSTRUCTOR))
def test_constructor_rejected_alike(case):
    make_ops, loss, metrics, dtype, confusion = CONSTRUCTOR[case]

    def call(Network):
        # metrics may be a one-shot iterator: give each engine its own copy of the case
        m = iter(["categorical_accuracy"]) if case == "metrics an iterator" else metrics
        Network(make_ops(), loss, m, dtype, confusion)

    reference = outcome(call, ReferenceNetwork)
    assert reference[0] is ValueError, reference
    assert outcome(call, CythonNetwork) == reference


@needs_cython
@pytest.mark.parametrize("case", list(CALLS))
def test_call_rejected_alike(case):
    reference = outcome(CALLS[case], ReferenceNetwork)
    assert reference[0] is ValueError, reference
    assert outcome(CALLS[case], CythonNetwork) == reference

