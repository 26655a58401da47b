"""A short workload to run under valgrind memcheck or an AddressSanitizer build (docs/memory-safety.md).

`python tests/robustness/memcheck_workload.py engine` drives the Cython `Network` directly over many shapes
(every activation, loss, optimizer, both dtypes, partial last batches, batch > n, n = 1, dropout, hooks that
stop or raise, bad arguments). `... api` runs a short fit, evaluate, predict, save and load through the
public API on both engines. Small sizes keep it fast under valgrind (~50x slowdown).
"""
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus", "softsign",
               "hard_sigmoid", "exponential")
LOSSES = ("mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
          "mean_squared_logarithmic_error", "squared_hinge", "hinge", "categorical_hinge", "logcosh",
          "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
          "kullback_leibler_divergence", "poisson", "cosine_proximity")
OPTIMIZERS = {"sgd": 1, "rmsprop": 1, "adagrad": 1, "adadelta": 2, "adam": 2, "adamax": 2, "nadam": 2}


class _Optimizer:
    """The optimizer object the engines read (docs/architecture.md)."""

    def __init__(self, kind, params, amsgrad=False):
        self.kind, self.lr, self.decay, self.epsilon = kind, 0.01, 0.001, 1e-7
        self.momentum, self.nesterov, self.rho = 0.9, True, 0.9
        self.beta_1, self.beta_2, self.amsgrad, self.schedule_decay = 0.9, 0.999, amsgrad, 0.004
        self.iterations, self.m_schedule = 0, 1.0
        count = 3 if amsgrad else OPTIMIZERS[kind]
        self.slots = [[np.zeros_like(p) for _ in range(count)] for p in params]


class _Hook:
    def __init__(self, stop_at=None, raise_at=None):
        self.batch_begin = self.batch_end = True
        self.end_interval = 0.0
        self.stop_at, self.raise_at = stop_at, raise_at

    def __call__(self, phase, batch, size, stats):
        if batch == self.raise_at:
            raise RuntimeError("hook failure")
        return batch == self.stop_at


class _Stop:
    stop_training = False


def _end_calls_hook(keys, raise_at=None):
    """A hook whose batch ends go through the engine's shortcut (`end_calls`): logs built in C."""
    hook, model = _Hook(), _Stop()

    def call(batch, logs):
        if batch == raise_at:
            raise RuntimeError("callback failure")
        model.stop_training = batch == 1
    hook.end_calls = ((call, lambda batch, logs: None), keys, model)
    return hook


def _targets(loss, rng, n, units, dtype):
    if loss == "sparse_categorical_crossentropy":
        return rng.integers(0, units, n).astype(np.int64)
    if loss in ("hinge", "squared_hinge"):
        return np.where(rng.random((n, units)) < 0.5, -1.0, 1.0).astype(dtype)
    if loss in ("categorical_crossentropy", "kullback_leibler_divergence", "categorical_hinge"):
        return np.eye(units, dtype=dtype)[rng.integers(0, units, n)]
    return (rng.random((n, units)) + 0.05).astype(dtype)


def _import_network():
    """The Cython Network; imported without running fastfit/__init__ when the rest of the package is broken."""
    try:
        from fastfit._ext._loop import Network
    except ImportError:
        import types
        root = os.path.join(os.path.dirname(__file__), "..", "..", "fastfit")
        bare = types.ModuleType("fastfit")
        bare.__path__ = [os.path.abspath(root)]
        sys.modules["fastfit"] = bare
        from fastfit._ext._loop import Network
    return Network


def engine_workload():
    Network = _import_network()
    rng = np.random.default_rng(0)
    cases = 0
    for dtype in (np.float32, np.float64):
        for i, loss in enumerate(LOSSES):
            act = "softmax" if "categorical" in loss or loss == "kullback_leibler_divergence" else \
                ACTIVATIONS[i % len(ACTIVATIONS)]
            if loss in ("binary_crossentropy", "poisson", "mean_squared_logarithmic_error"):
                act = "sigmoid"
            kind = list(OPTIMIZERS)[i % len(OPTIMIZERS)]
            for n, batch_size, hidden in ((1, 1, 3), (7, 3, 5), (5, 64, 2), (9, 4, 1)):
                units = 3
                W1 = rng.normal(size=(4, hidden)).astype(dtype)
                b1 = np.zeros(hidden, dtype)
                W2 = rng.normal(size=(hidden, units)).astype(dtype)
                ops = [("dense", W1, b1), ("activation", ACTIVATIONS[(i + n) % len(ACTIVATIONS)]),
                       ("dropout", 0.3, 7), ("dense", W2, None), ("activation", act)]
                sparse = loss == "sparse_categorical_crossentropy"
                metrics = ["sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy"] if sparse else \
                    ["categorical_accuracy", "binary_accuracy", "top_k_categorical_accuracy", "mean_absolute_error"]
                net = Network(ops, loss, metrics, dtype)
                x = rng.normal(size=(n, 4)).astype(dtype)
                y = _targets(loss, rng, n, units, dtype)
                w = rng.random(n).astype(dtype)
                opt = _Optimizer(kind, [W1, b1, W2], amsgrad=(kind == "adam" and n == 7))
                order = rng.permutation(n).astype(np.int64)
                net.train_epoch(x, y, w, order, batch_size, opt, None)
                net.train_epoch(x, y, None, np.arange(n, dtype=np.int64), batch_size, opt, _Hook(stop_at=1))
                try:
                    net.train_epoch(x, y, None, order, batch_size, opt, _Hook(raise_at=0))
                except RuntimeError:
                    pass
                net.evaluate(x, y, w, batch_size, _Hook())
                keys = ["loss"] + metrics
                net.train_epoch(x, y, w, order, batch_size, opt, _end_calls_hook(keys))
                try:
                    net.train_epoch(x, y, None, order, batch_size, opt, _end_calls_hook(keys, raise_at=0))
                except RuntimeError:
                    pass
                net.evaluate(x, y, None, batch_size, _end_calls_hook(keys))
                out = np.empty((n, units), dtype)
                net.predict(x, batch_size, out, None)
                cases += 1
    for dtype in (np.float32, np.float64):
        # Split over two threads: row blocks of 32-35 rows, per-block gradient parts of the narrow layers,
        # the fused gather + first layer (float32), a last short batch.
        W1 = rng.normal(size=(20, 6)).astype(dtype)
        b1 = np.zeros(6, dtype)
        W2 = rng.normal(size=(6, 3)).astype(dtype)
        net = Network([("dense", W1, b1), ("activation", "relu"), ("dense", W2, None),
                       ("activation", "softmax")], "categorical_crossentropy", ["categorical_accuracy"], dtype)
        net.split_threads = 2
        x = rng.normal(size=(150, 20)).astype(dtype)
        y = _targets("categorical_crossentropy", rng, 150, 3, dtype)
        opt = _Optimizer("adam", [W1, b1, W2])
        net.train_epoch(x, y, None, rng.permutation(150).astype(np.int64), 70, opt, None)
        assert [s for s, _, _ in net.stages].count("block gradient") >= 1, net.stages
        cases += 1
        # A layer of 20 x 1000 weights: its training product split by depth (partial outputs, then their sum),
        # its evaluate product by output columns.
        W3 = rng.normal(size=(20, 1000)).astype(dtype)
        W4 = rng.normal(size=(1000, 3)).astype(dtype)
        wide = Network([("dense", W3, None), ("activation", "relu"), ("dense", W4, None),
                        ("activation", "softmax")], "categorical_crossentropy", [], dtype)
        wide.split_threads = 2
        wide.train_epoch(x, y, None, rng.permutation(150).astype(np.int64), 70, _Optimizer("adam", [W3, W4]), None)
        assert ("forward by depth", 0, "columns") in wide.stages, wide.stages
        wide.evaluate(x, y, None, 70, None)
        cases += 1
        # The first Dense frozen: forward and input gradient only, no gradient arrays, no slots.
        frozen = Network([("dense", W1, b1, False), ("activation", "relu"), ("dense", W2, None),
                          ("activation", "softmax")], "categorical_crossentropy", [], dtype)
        frozen.train_epoch(x, y, None, rng.permutation(150).astype(np.int64), 32, _Optimizer("sgd", [W2]), None)
        cases += 1
    _bad_engine_calls(Network, rng)
    print(f"engine workload: {cases} cases")


def _bad_engine_calls(Network, rng):
    """Arguments the Python layer never passes must still be refused before any pointer arithmetic."""
    W = rng.normal(size=(4, 3)).astype(np.float32)
    net = Network([("dense", W, None), ("activation", "softmax")], "sparse_categorical_crossentropy", [],
                  np.float32)
    x = np.ones((5, 4), np.float32)
    opt = _Optimizer("sgd", [W])
    bad = [
        lambda: net.train_epoch(x, np.array([0, 1, 2, 3, 4]), None, np.arange(5), 2, opt, None),  # label 3, 4
        lambda: net.train_epoch(x, np.zeros(5, np.int64), None, np.arange(5) + 1, 2, opt, None),   # order n
        lambda: net.train_epoch(x, np.zeros(4, np.int64), None, np.arange(5), 2, opt, None),      # y short
        lambda: net.train_epoch(x[:, :3].copy(), np.zeros(5, np.int64), None, np.arange(5), 2, opt, None),
        lambda: net.train_epoch(x[::2], np.zeros(3, np.int64), None, np.arange(3), 2, opt, None),  # strided
        lambda: net.train_epoch(x, np.zeros(5, np.int64), np.ones(4, np.float32), np.arange(5), 2, opt, None),
        lambda: net.train_epoch(x, np.zeros(5, np.int64), None, np.arange(5), 0, opt, None),
        lambda: net.predict(x, 2, np.empty((4, 3), np.float32), None),
        lambda: net.predict(x.astype(np.float64), 2, np.empty((5, 3), np.float32), None),
    ]
    for call in bad:
        try:
            call()
        except ValueError:
            continue
        raise AssertionError("a bad engine call was accepted")


def api_workload():
    import fastfit
    from fastfit.models import Sequential, load_model
    from fastfit.layers import Dense, Dropout
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 6)).astype("float32")
    labels = rng.integers(0, 3, 37)
    with tempfile.TemporaryDirectory() as folder:
        for engine in ("cython", "python"):
            fastfit.utils.set_random_seed(1)
            model = Sequential([Dense(5, input_dim=6, activation="relu"), Dropout(0.2),
                                Dense(3, activation="softmax")])
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["acc"], engine=engine)
            model.fit(x, labels, batch_size=8, epochs=2, verbose=0, validation_split=0.2)
            model.evaluate(x, labels, batch_size=16, verbose=0)
            model.predict(x, batch_size=64)
            path = os.path.join(folder, f"{engine}.h5")
            model.save(path)
            again = load_model(path)
            again.fit(x, labels, batch_size=5, epochs=1, verbose=0)
            again.predict(x[:1])
            # per-epoch checkpoints: from the second on, the native writer thread (Linux builds)
            again.fit(x, labels, batch_size=8, epochs=3, verbose=0,
                      callbacks=[fastfit.callbacks.ModelCheckpoint(os.path.join(folder, f"{engine}-{{epoch}}.h5"))])
            load_model(os.path.join(folder, f"{engine}-3.h5"))
        _native_writer_calls(folder)
    print("api workload: done")


def _native_writer_calls(folder):
    """The native writer's own entry points, good and bad (errors are reported, never crash)."""
    try:
        from fastfit._ext import _filewrite
    except ImportError:
        return
    target = os.fsencode(os.path.join(folder, "native.bin"))
    for tmp, header, crc_at in ((b".a.tmp", bytearray(b"crc=00000000"), 4), (b".b.tmp", b"head", -1)):
        job = _filewrite.FileWrite(os.fsencode(os.path.join(folder, os.fsdecode(tmp))), target, header,
                                   np.arange(1000, dtype=np.float32).view(np.uint8), True, 0o022, crc_at)
        job.start()
        assert job.wait() is None
    bad = _filewrite.FileWrite(os.fsencode(os.path.join(folder, "no", "x.tmp")), target, b"", b"x", True, 0, -1)
    bad.start()
    assert bad.wait() is not None
    buffer = bytearray(16)
    slot = np.ndarray((2,), np.float64, buffer=buffer, offset=0)
    assert _filewrite.copy_slots(buffer, [0], [slot], [np.ones(2)])
    assert not _filewrite.copy_slots(buffer, [0], [slot], [np.ones(3)])


if __name__ == "__main__":
    which = sys.argv[1:] or ["engine", "api"]
    if "engine" in which:
        engine_workload()
    if "api" in which:
        api_workload()
