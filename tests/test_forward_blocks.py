"""predict, evaluate and the validation pass run the forward pass in blocks (docs/guide/performance-and-threads.md,
"Forward blocks"): the rule of what stays bit-identical, the hooks' batches, the cached one-row path."""
import numpy as np
import pytest

from fastfit.callbacks import Callback
from fastfit.engine import lowering
from fastfit.layers import Dense, Flatten
from fastfit.models import Sequential

N = 2500  # more than one block of FORWARD_BLOCK_ROWS, with a partial last block
TOLERANCE = {np.float32: 2e-6, np.float64: 1e-13}


def make_model(engine, dtype=np.float32, hidden=(24,), seed=0):
    layers = [Dense(hidden[0], activation="relu", input_dim=12, dtype=dtype)]
    layers += [Dense(h, activation="relu", dtype=dtype) for h in hidden[1:]]
    model = Sequential(layers + [Dense(5, activation="softmax", dtype=dtype)])
    model.compile("adam", "categorical_crossentropy", metrics=["acc"], engine=engine)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype(dtype) for w in model.get_weights()])
    return model


def make_data(dtype=np.float32, n=N, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)).astype(dtype)
    y = np.eye(5, dtype=dtype)[rng.integers(0, 5, n)]
    return x, y


class PredictBatches(Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_predict_batch_end(self, batch, logs=None):
        self.batches.append((batch, logs["size"], np.array(logs["outputs"])))


class EvaluateBatches(Callback):
    def __init__(self):
        super().__init__()
        self.sizes = []

    def on_test_batch_end(self, batch, logs=None):
        self.sizes.append((batch, logs["size"]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_without_hooks_gives_the_same_bits_for_every_batch_size_up_to_a_block(core, dtype):
    model = make_model(core, dtype)
    x, _ = make_data(dtype)
    first = model.predict(x, batch_size=1)
    for batch_size in (7, 32, 100, lowering.FORWARD_BLOCK_ROWS):
        np.testing.assert_array_equal(model.predict(x, batch_size=batch_size), first)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [1, 7, 32, 100, 1500])
def test_predict_in_blocks_equals_the_per_batch_results_and_hooks_see_the_users_batches(core, dtype, batch_size):
    model = make_model(core, dtype)
    x, _ = make_data(dtype, n=300 if batch_size == 1 else N)
    blocked = model.predict(x, batch_size=batch_size)
    record = PredictBatches()
    per_batch = model.predict(x, batch_size=batch_size, callbacks=[record])
    np.testing.assert_allclose(blocked, per_batch, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    sizes = [min(batch_size, len(x) - s) for s in range(0, len(x), batch_size)]
    assert [(b, s) for b, s, _ in record.batches] == list(enumerate(sizes))
    starts = np.cumsum([0] + sizes[:-1])
    for (_, size, rows), start in zip(record.batches, starts):
        np.testing.assert_array_equal(rows, per_batch[start:start + size])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_evaluate_in_blocks_equals_the_per_batch_results(core, dtype):
    model = make_model(core, dtype)
    x, y = make_data(dtype)
    for batch_size in (1, 32, 100, 1500):
        blocked = model.evaluate(x, y, batch_size=batch_size, verbose=0)
        record = EvaluateBatches()
        per_batch = model.evaluate(x, y, batch_size=batch_size, verbose=0, callbacks=[record])
        batches = -(-N // batch_size)
        assert len(record.sizes) == batches and record.sizes[-1] == (batches - 1, N - (batches - 1) * batch_size)
        np.testing.assert_allclose(blocked, per_batch, rtol=1e-6 if dtype == np.float32 else 1e-12)
    # Below a block, the batch size no longer changes the arithmetic.
    assert model.evaluate(x, y, batch_size=8, verbose=0) == model.evaluate(x, y, batch_size=64, verbose=0)


def test_evaluate_with_zero_sample_weights_keeps_the_users_batches(core):
    # Keras 2 divides a batch's weighted loss by its count of non-zero weights: blocks would change that.
    model = make_model(core)
    x, y = make_data(n=300)
    weights = np.ones(300, dtype=np.float32)
    weights[::3] = 0.0
    weights[:32] = 0.0
    blocked = model.evaluate(x, y, batch_size=32, sample_weight=weights, verbose=0)
    per_batch = model.evaluate(x, y, batch_size=32, sample_weight=weights, verbose=0, callbacks=[EvaluateBatches()])
    assert blocked == per_batch
    # without zeros, the blocks give the per-batch result within rounding
    weights[weights == 0] = 0.5
    blocked = model.evaluate(x, y, batch_size=32, sample_weight=weights, verbose=0)
    per_batch = model.evaluate(x, y, batch_size=32, sample_weight=weights, verbose=0, callbacks=[EvaluateBatches()])
    np.testing.assert_allclose(blocked, per_batch, rtol=1e-6)


def test_validation_pass_reports_what_evaluate_returns(core):
    model = make_model(core)
    x, y = make_data()
    xv, yv = make_data(n=700, seed=5)
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0, validation_data=(xv, yv))
    loss, acc = model.evaluate(xv, yv, batch_size=32, verbose=0)
    assert history.history["val_loss"] == [loss] and history.history["val_acc"] == [acc]
    # validation_split: the last rows, scored the same way
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0, validation_split=0.2, shuffle=False)
    loss, acc = model.evaluate(x[2000:], y[2000:], batch_size=32, verbose=0)
    assert history.history["val_loss"] == [loss] and history.history["val_acc"] == [acc]


def test_one_row_predict_equals_the_batch_row_and_the_general_path(core):
    model = make_model(core, hidden=(64, 32))
    x, _ = make_data()
    batch = model.predict(x[:200])
    for i in (0, 17, 199):
        one = model.predict(x[i:i + 1])
        assert one.shape == (1, 5)
        np.testing.assert_allclose(one[0], batch[i], rtol=2e-6, atol=2e-7)
        # callbacks=[] takes the general path (CallbackList, hooks, checks): the same bits
        np.testing.assert_array_equal(model.predict(x[i:i + 1], callbacks=[]), one)
        np.testing.assert_array_equal(model.predict_on_batch(x[i:i + 1]), one)
    np.testing.assert_array_equal(model.predict(x[:200], callbacks=[]), batch)


def test_cached_predict_state_follows_changes_of_the_model(core):
    model = make_model(core)
    x, _ = make_data(n=10)
    before = model.predict(x)
    model.set_weights([w * 0.5 for w in model.get_weights()])
    after = model.predict(x)
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, model.predict(x, callbacks=[]))
    model.add(Dense(3, dtype=np.float32))  # a new output layer: the cached network must not be reused
    assert model.predict(x).shape == (10, 3)
    model.pop()
    np.testing.assert_array_equal(model.predict(x), after)


def test_plain_predict_still_checks_its_arguments(core):
    model = make_model(core)
    x, _ = make_data(n=4)
    bad = x.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.predict(bad)
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(x, batch_size=0)
    with pytest.raises(ValueError, match="samples of shape"):
        model.predict(x[:, :5])
    with pytest.raises(ValueError, match="0 samples"):
        model.predict(x[:0])
    # other dtypes, layouts and shapes go through the general path, with the same result
    np.testing.assert_allclose(model.predict(x.astype(np.float64)), model.predict(x), rtol=1e-6)
    np.testing.assert_array_equal(model.predict(np.asfortranarray(x)), model.predict(x))


def test_multi_dimensional_inputs_take_the_plain_path(core):
    model = Sequential([Flatten(input_shape=(3, 4)), Dense(5, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", engine=core)
    x = np.random.default_rng(0).normal(size=(6, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x), model.predict(x, callbacks=[]))


def test_threaded_blocks_give_the_same_bits_on_every_run():
    pytest.importorskip("fastfit._ext._loop")
    model = make_model("cython", hidden=(256, 256))
    x, y = make_data(n=5000)
    net = lowering.core_network(model, "cython", "mean_squared_error", [])
    net.split_threads = 2  # two row blocks per block of rows, whatever BLAS allows
    first = model.predict(x)
    scores = model.evaluate(x, y, verbose=0)
    for _ in range(3):
        np.testing.assert_array_equal(model.predict(x), first)
    net.serial = True  # the same blocks, one after the other on one thread: the same bits
    np.testing.assert_array_equal(model.predict(x), first)
    net.serial = False
    assert model.evaluate(x, y, verbose=0) == scores


class _SilentHook:
    """A batch hook that listens to nothing: predict then runs its batch loop instead of shared blocks."""
    batch_begin = batch_end = False
    end_interval = 0.0

    def __call__(self, phase, batch, size, stats):
        return False


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, batch_size", [(3001, 1024), (1040, 1024), (1030, 1024), (2500, 100), (17, 32), (95, 32)])
def test_threads_taking_blocks_in_turn_give_the_batch_loops_bits(dtype, n, batch_size):
    """predict without a hook on two threads hands the row blocks of all batches to whichever thread is free;
    each block is the batch loop's block, so the output is bit for bit the batch loop's (on two threads and
    on one), including a last batch too small to split and ops that only run in training."""
    pytest.importorskip("fastfit._ext._loop")
    from fastfit.layers import BatchNormalization, Dropout
    model = Sequential([Dense(40, activation="relu", input_dim=12, dtype=dtype), Dropout(0.3),
                        BatchNormalization(dtype=dtype), Dense(5, activation="softmax", dtype=dtype)])
    model.compile("adam", "categorical_crossentropy", engine="cython")
    x, _ = make_data(dtype, n=n)
    net = lowering.core_network(model, "cython", "mean_squared_error", [])
    net.split_threads = 2
    shared, loop, serial = (np.empty((n, 5), dtype) for _ in range(3))
    net.predict(x, batch_size, shared, None)
    net.predict(x, batch_size, loop, _SilentHook())
    net.serial = True
    net.predict(x, batch_size, serial, None)
    np.testing.assert_array_equal(shared, loop)
    np.testing.assert_array_equal(shared, serial)


SIGINT_PREDICT_CHILD = """
import json, sys
import numpy as np
from fastfit.engine import lowering
from fastfit.layers import Dense
from fastfit.models import Sequential

rng = np.random.default_rng(0)
model = Sequential([Dense(512, input_dim=64, activation="relu"), Dense(512, activation="relu"),
                    Dense(4, activation="softmax")])
model.compile("adam", "categorical_crossentropy", engine="cython")
lowering.core_network(model, "cython", "mean_squared_error", []).split_threads = 2  # the shared blocks
x = rng.normal(size=(100000, 64)).astype("float32")  # seconds of work: the signal lands inside the call
print("ready", flush=True)
try:
    model.predict(x)
    outcome = "finished"
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
small = model.predict(x[:3000])  # the model is usable again, and gives the batch loop's bits
print(json.dumps({"outcome": outcome, "usable": bool(np.isfinite(small).all())}))
"""


def test_ctrl_c_stops_a_predict_on_shared_blocks(tmp_path):
    pytest.importorskip("fastfit._ext._loop")
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = tmp_path / "child.py"
    script.write_text(SIGINT_PREDICT_CHILD)
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=root, env=dict(os.environ, PYTHONPATH=root))
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"outcome": "KeyboardInterrupt", "usable": True}


def _evaluate_three_ways(net, x, y, weights, batch_size):
    """net.evaluate with shared blocks (two threads, no hook), through the batch loop (a hook), and on one
    thread: the sums and the threshold histograms of each."""
    results = []
    for hook, serial in ((None, False), (_SilentHook(), False), (None, True)):
        net.serial = serial
        sums = net.evaluate(x, y, weights, batch_size, hook)
        results.append((sums, net.confusion_counts.copy()))
    net.serial = False
    return results


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, batch_size", [(3001, 1024), (1040, 1024), (1030, 1024), (2500, 100), (17, 32), (95, 32)])
@pytest.mark.parametrize("weighted", [False, True])
def test_evaluate_on_threads_taking_blocks_in_turn_gives_the_batch_loops_bits(dtype, n, batch_size, weighted):
    """evaluate without a hook on two threads hands the row blocks of all batches to whichever thread is free,
    keeps each block's loss share and metric sums, and adds them up batch by batch afterwards as the batch
    loop does: the loss, metric sums and histograms are bit for bit the batch loop's (on two threads and on
    one), with sample weights (zeros too: a batch's loss divides by its count of non-zero weights), an
    activity penalty, a weight penalty and a last batch too small to split."""
    pytest.importorskip("fastfit._ext._loop")
    from fastfit.layers import ActivityRegularization, BatchNormalization, Dropout
    from fastfit.regularizers import l2
    model = Sequential([Dense(40, activation="relu", input_dim=12, dtype=dtype, kernel_regularizer=l2(1e-3)),
                        Dropout(0.3), BatchNormalization(dtype=dtype), ActivityRegularization(l1=1e-4),
                        Dense(5, activation="softmax", dtype=dtype)])
    model.compile("adam", "categorical_crossentropy", engine="cython")
    x, y = make_data(dtype, n=n)
    weights = None
    if weighted:
        weights = np.random.default_rng(2).uniform(0.1, 2.0, n).astype(dtype)
        weights[::7] = 0.0
        weights[:batch_size] = 0.0  # a first batch whose loss counts nothing
    thresholds = tuple(np.linspace(0.0, 1.0, 11))
    net = lowering.core_network(model, "cython", "categorical_crossentropy",
                                  ["categorical_accuracy", "mean_squared_error", "top_k_categorical_accuracy"],
                                  confusion=[(thresholds, -1, 0), (thresholds, 2, 0), ((0.3,), -1, 2)])
    net.split_threads = 2
    shared, loop, serial = _evaluate_three_ways(net, x, y, weights, batch_size)
    np.testing.assert_array_equal(shared[0], loop[0])
    np.testing.assert_array_equal(shared[1], loop[1])
    np.testing.assert_array_equal(shared[0], serial[0])
    np.testing.assert_array_equal(shared[1], serial[1])
    assert shared[0][0] == n and shared[1].sum() > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_evaluate_and_the_validation_pass_on_shared_blocks_give_the_batch_loops_bits(dtype):
    """Through the model: evaluate without callbacks (shared blocks when two threads split the blocks) returns
    what the batch loop returns for the same blocks, and fit's validation logs report the same numbers."""
    pytest.importorskip("fastfit._ext._loop")
    from fastfit import metrics as M
    model = make_model("cython", dtype, hidden=(64,))
    model.compile("adam", "categorical_crossentropy", metrics=["acc", M.AUC(num_thresholds=50)], engine="cython")
    x, y = make_data(dtype, n=3100)
    net = model._train_network()
    net.split_threads = 2
    rows = lowering.forward_block(model, 32, dtype)
    shared = model.evaluate(x, y, batch_size=32, verbose=0)
    net.serial = True
    serial = model.evaluate(x, y, batch_size=32, verbose=0)
    net.serial = False
    assert shared == serial
    history = model.fit(x[:200], y[:200], batch_size=32, epochs=1, verbose=0, validation_data=(x, y))
    assert [history.history[k][0] for k in ("val_loss", "val_acc", "val_auc")] == model.evaluate(x, y, verbose=0)
    assert rows == lowering.FORWARD_BLOCK_ROWS


def test_the_shared_blocks_module_runs_its_parallel_regions_on_several_threads():
    """`_loop` holds the parallel region of predict's and evaluate's shared row blocks: built without OpenMP,
    its prange runs serially and the shared blocks take one core (the bits stay the same, so only this shows)."""
    loop = pytest.importorskip("fastfit._ext._loop")
    import sys
    if not sys.platform.startswith("linux"):
        pytest.skip("OpenMP is built on Linux only (setup.py)")
    assert loop._region_threads(2) == 2
    assert loop._region_threads(1) == 1
