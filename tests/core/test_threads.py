"""Batches split over threads: row blocks and parameter slices (src_cython/fastfit/_ext/_batch.pyx).

The split fixes the arithmetic, the threads only run it: a split network agrees with the reference engine,
and running its blocks and slices one after the other gives the same bits as running them side by side.
"""
import numpy as np
import pytest

from core_helpers import DTYPES, Hook, Network, Optimizer, make_data, make_ops

reference = pytest.importorskip("fastfit._reference.loop")

RTOL = {np.float32: 1e-4, np.float64: 1e-8}
# 150 rows in batches of 64: two full batches of two 32-row blocks, then 22 rows (too few to split).
N, BATCH = 150, 64
# Chains whose batches split by rows only, and one with a layer wider than the batch is tall and big enough
# (150 x 120 weights) for its forward product and input gradient to split by columns.
NARROW = dict(sizes=(12, 40, 20, 5))
WIDE = dict(sizes=(20, 150, 120, 5))
SHAPES = pytest.mark.parametrize("shape", [NARROW, WIDE], ids=["rows", "columns"])
# In float32 the wide chain drifts from the reference by more than 1e-4 within 3 epochs with any engine
# layout (rounding amplified by RMSprop/Adam on tiny gradients; the same with one thread), so it is compared
# in float64, where 1e-8 is the stricter test.
DTYPE_SHAPES = pytest.mark.parametrize("dtype, shape", [(np.float32, NARROW), (np.float64, NARROW),
                                                        (np.float64, WIDE)],
                                       ids=["float32-rows", "float64-rows", "float64-columns"])


def train(engine, dtype, loss="categorical_crossentropy", kind="adam", threads=2, serial=False, weights=True,
          sizes=(12, 40, 20, 5), activations=("relu", "tanh", "softmax"), epochs=3, lr_factor=None):
    """Train a seeded chain; return (params, slots, sums per epoch, evaluate sums, predictions)."""
    ops, params = make_ops(dtype, list(sizes), list(activations), dropout={0: (0.25, 5)})
    x, y = make_data(dtype, N, sizes[0], sizes[-1], loss)
    w = None
    if weights:
        w = np.random.default_rng(3).uniform(0, 2, N).astype(dtype)
        w[[0, 5, 70]] = 0
    metrics = (["sparse_categorical_accuracy"] if loss.startswith("sparse")
               else ["categorical_accuracy", "mean_absolute_error"])
    net = engine(ops, loss, metrics, dtype)
    if engine is Network:
        net.split_threads, net.serial = threads, serial
    opt = Optimizer(kind, params)

    def scale_lr(phase, batch, size, stats):
        opt.lr *= lr_factor

    rng = np.random.default_rng(9)
    hook = Hook(begin=False, on_call=scale_lr if lr_factor else None)
    sums = [net.train_epoch(x, y, w, rng.permutation(N).astype(np.int64), BATCH, opt, hook)
            for _ in range(epochs)]
    evaluated = net.evaluate(x, y, w, BATCH, None)
    out = np.zeros((N, sizes[-1]), dtype)
    net.predict(x, BATCH, out, None)
    return params, [a for s in opt.slots for a in s], sums, evaluated, out, [c[3] for c in hook.calls], opt.lr


@DTYPE_SHAPES
@pytest.mark.parametrize("loss, kind", [("categorical_crossentropy", "adam"), ("mean_squared_error", "rmsprop"),
                                        ("sparse_categorical_crossentropy", "sgd"), ("binary_crossentropy", "nadam")])
def test_split_batches_match_the_reference(dtype, shape, loss, kind):
    activations = ("relu", "tanh", "sigmoid" if loss == "binary_crossentropy" else "softmax")
    got = train(Network, dtype, loss, kind, activations=activations, **shape)
    want = train(reference.Network, dtype, loss, kind, activations=activations, **shape)
    rtol = RTOL[dtype]
    for name, a_list, b_list in zip(("params", "slots", "sums", "evaluated", "out", "hook stats"), got[:-1], want[:-1]):
        a_list = a_list if isinstance(a_list, list) else [a_list]
        b_list = b_list if isinstance(b_list, list) else [b_list]
        assert len(a_list) == len(b_list)
        for a, b in zip(a_list, b_list):
            scale = max(np.abs(b).max(), 1e-3)
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale * 1e-2, err_msg=name)


@DTYPES
@SHAPES
@pytest.mark.parametrize("threads", [2, 3])
def test_threads_do_not_change_the_bits(dtype, shape, threads):
    side_by_side = train(Network, dtype, threads=threads, **shape)
    one_after_other = train(Network, dtype, threads=threads, serial=True, **shape)
    for a_list, b_list in zip(side_by_side[:-1], one_after_other[:-1]):
        for a, b in zip(a_list if isinstance(a_list, list) else [a_list],
                        b_list if isinstance(b_list, list) else [b_list]):
            np.testing.assert_array_equal(a, b)


def test_plans_split_wide_layers_by_columns():
    # Engine ops of WIDE: 0 dense 20->150 + relu, 1 dropout, 2 dense 150->120 + tanh, 3 dense 120->5 + softmax.
    # Only op 2 is wider than a batch of 64 rows with enough weights to split by columns. In training its
    # forward product splits by depth instead (each thread reads the rows of W it updates), then a row stage
    # sums the partial outputs.
    ops, params = make_ops(np.float64, list(WIDE["sizes"]), ["relu", "tanh", "softmax"], dropout={0: (0.25, 5)})
    net = Network(ops, "categorical_crossentropy", [], np.float64)
    net.split_threads = 2
    x, y = make_data(np.float64, N, 20, 5, "categorical_crossentropy")
    net.train_epoch(x, y, None, np.arange(N, dtype=np.int64), BATCH, Optimizer("sgd", params), None)
    columns = [(stage, op) for stage, op, how in net.stages if how == "columns"]
    assert columns == [("forward by depth", 2), ("input grad", 2)]
    stages = [(stage, op) for stage, op, _ in net.stages]
    assert stages.index(("forward sum", 2)) == stages.index(("forward by depth", 2)) + 1
    assert net.stages[0] == ("gather", None, "rows") and ("score", None, "rows") in net.stages
    net.evaluate(x, y, None, BATCH, None)   # nothing is updated: the output columns split as before
    assert [(stage, op) for stage, op, how in net.stages if how == "columns"] == [("forward", 2)]
    net.split_threads = 1
    net.train_epoch(x, y, None, np.arange(N, dtype=np.int64), BATCH, Optimizer("sgd", params), None)
    assert all(how == "rows" for _, _, how in net.stages)
    net.evaluate(x, y, None, BATCH, None)
    assert [stage for stage, _, _ in net.stages] == ["forward"] * 3 + ["score"]  # no dropout, no backward


def test_plans_sum_narrow_layers_gradients_from_block_parts():
    # NARROW's engine ops: 0 dense 12->40, 1 dropout, 2 dense 40->20, 3 dense 20->5. Blocks of 32 rows: only
    # layers of at most 16 units take their gradient from per-block parts (for op 3, reading the other
    # block's 32 rows of its 20-wide input moves more than the 20 x 5 part does).
    ops, params = make_ops(np.float64, list(NARROW["sizes"]), ["relu", "tanh", "softmax"], dropout={0: (0.25, 5)})
    net = Network(ops, "categorical_crossentropy", [], np.float64)
    net.split_threads = 2
    x, y = make_data(np.float64, N, 12, 5, "categorical_crossentropy")
    order = np.arange(N, dtype=np.int64)
    net.train_epoch(x, y, None, order, BATCH, Optimizer("sgd", params), None)
    assert [op for stage, op, _ in net.stages if stage == "block gradient"] == [3]
    net.train_epoch(x, y, None, order, 16, Optimizer("sgd", params), None)   # one block: nothing to sum
    assert "block gradient" not in [stage for stage, _, _ in net.stages]
    net.split_threads = 1
    net.train_epoch(x, y, None, order, BATCH, Optimizer("sgd", params), None)
    assert "block gradient" not in [stage for stage, _, _ in net.stages]


def test_longest_plan_fits_and_trains_like_the_reference():
    # Every layer narrow: each one gets a backward, a block gradient and (but the first) an input gradient,
    # the longest plan there is (4 per Dense op + gather + score - 1). It once overran the stage array.
    sizes, acts = (12, 8, 8, 8, 5), ("relu", "tanh", "relu", "softmax")
    ops, params = make_ops(np.float64, list(sizes), list(acts))
    ref_ops, ref_params = make_ops(np.float64, list(sizes), list(acts))
    x, y = make_data(np.float64, N, 12, 5, "categorical_crossentropy")
    order = np.random.default_rng(4).permutation(N).astype(np.int64)
    net = Network(ops, "categorical_crossentropy", [], np.float64)
    net.split_threads = 2
    ref = reference.Network(ref_ops, "categorical_crossentropy", [], np.float64)
    got = net.train_epoch(x, y, None, order, BATCH, Optimizer("adam", params), None)
    want = ref.train_epoch(x, y, None, order, BATCH, Optimizer("adam", ref_params), None)
    stages = [stage for stage, _, _ in net.stages]
    assert stages.count("block gradient") == 4 and len(stages) == 4 * 4 + 1
    np.testing.assert_allclose(got, want, rtol=1e-8)
    for a, b in zip(params, ref_params):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("batch", [16, 31])
def test_batches_too_small_for_row_blocks_still_split_wide_layers(batch):
    # One row block but two column slices and two parameter slices per batch.
    ops, params = make_ops(np.float64, list(WIDE["sizes"]), ["relu", "tanh", "softmax"])
    ref_ops, ref_params = make_ops(np.float64, list(WIDE["sizes"]), ["relu", "tanh", "softmax"])
    x, y = make_data(np.float64, N, 20, 5, "categorical_crossentropy")
    order = np.random.default_rng(2).permutation(N).astype(np.int64)
    net = Network(ops, "categorical_crossentropy", ["categorical_accuracy"], np.float64)
    net.split_threads = 2
    ref = reference.Network(ref_ops, "categorical_crossentropy", ["categorical_accuracy"], np.float64)
    got = net.train_epoch(x, y, None, order, batch, Optimizer("adam", params), None)
    want = ref.train_epoch(x, y, None, order, batch, Optimizer("adam", ref_params), None)
    assert ("forward by depth", 1, "columns") in net.stages
    np.testing.assert_allclose(got, want, rtol=1e-8)
    for a, b in zip(params, ref_params):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


def test_depth_split_with_empty_slices_matches_the_reference():
    # 2 inputs and 9000 units split 4 ways by depth: slices 0 and 2 get no input, their partial output is 0.
    kwargs = dict(sizes=(2, 9000, 3), activations=("relu", "softmax"), weights=False, epochs=1)
    got = train(Network, np.float64, threads=4, **kwargs)
    want = train(reference.Network, np.float64, **kwargs)
    for a, b in zip(got[0], want[0]):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-8)


def test_more_threads_than_weight_rows_or_units():
    # 3 inputs and 2 outputs split 4 ways: some slices are empty, the result still matches the reference.
    kwargs = dict(sizes=(3, 2), activations=("softmax",), weights=False)
    got = train(Network, np.float64, threads=4, **kwargs)
    want = train(reference.Network, np.float64, **kwargs)
    for a, b in zip(got[0], want[0]):
        np.testing.assert_allclose(a, b, rtol=1e-8)


@SHAPES
def test_hook_changing_lr_between_split_batches(shape):
    got = train(Network, np.float64, epochs=2, lr_factor=0.5, **shape)
    want = train(reference.Network, np.float64, epochs=2, lr_factor=0.5, **shape)
    assert got[-1] == pytest.approx(0.01 * 0.5 ** 6)  # 3 batches per epoch, 2 epochs
    for a, b in zip(got[0], want[0]):
        np.testing.assert_allclose(a, b, rtol=1e-8)


@DTYPES
@pytest.mark.parametrize("kind", ["sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam"])
def test_both_builds_of_the_optimizer_rules_match_the_reference(dtype, kind):
    # The AVX2 + FMA build of `_optim` (used where the CPU has them) against the baseline build.
    from fastfit._ext import _batch
    builds = ["baseline"]
    before = _batch.simd_kernels()
    try:
        _batch.simd_kernels("avx2")
        builds.append("avx2")
    except ValueError:
        pass  # not an AVX2 + FMA CPU (or not x86-64): only the baseline build runs here
    want = train(reference.Network, dtype, kind=kind)
    try:
        for build in builds:
            _batch.simd_kernels(build)
            got = train(Network, dtype, kind=kind)
            for a, b in zip(got[0] + got[1], want[0] + want[1]):
                scale = max(np.abs(b).max(), 1e-3)
                np.testing.assert_allclose(a, b, rtol=RTOL[dtype], atol=RTOL[dtype] * scale * 1e-2, err_msg=build)
    finally:
        _batch.simd_kernels(before)


def test_unknown_simd_build_is_refused():
    from fastfit._ext import _batch
    with pytest.raises(ValueError, match="'baseline' or 'avx2'"):
        _batch.simd_kernels("avx512")


def test_blas_threads_are_given_back_when_a_hook_raises():
    # BLAS is pinned to one thread per call while the parts of a batch run side by side; a raising hook
    # must not leave it pinned for the rest of the process.
    from fastfit._ext._blas import blas_threads
    before = blas_threads()
    ops, params = make_ops(np.float64, list(NARROW["sizes"]), ["relu", "tanh", "softmax"])
    net = Network(ops, "categorical_crossentropy", [], np.float64)
    net.split_threads = 2
    x, y = make_data(np.float64, N, 12, 5, "categorical_crossentropy")
    with pytest.raises(RuntimeError, match="hook failure"):
        net.train_epoch(x, y, None, np.arange(N, dtype=np.int64), BATCH, Optimizer("sgd", params),
                        Hook(begin=False, raise_at=(1, 1)))
    assert blas_threads() == before
    net.evaluate(x, y, None, BATCH, None)
    assert blas_threads() == before


DENORMAL_CHILD = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from core_helpers import Network, Optimizer
from fastfit._ext._scan import count_nonfinite

# Start the OpenMP pool from code that leaves the floating-point mode alone (denormals kept).
count_nonfinite(np.ones(1 << 20, np.float32), 2)

def train(serial):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(40, 8)).astype(np.float32)
    b = np.zeros(8, np.float32)
    net = Network([("dense", W, b), ("activation", "softmax")], "categorical_crossentropy", [], np.float32)
    net.split_threads, net.serial = 2, serial
    x = rng.normal(size=(64, 40)).astype(np.float32)
    x[:, 20:] = 0  # those rows of W get a zero gradient: their Adam moments only decay
    y = np.eye(8, dtype=np.float32)[rng.integers(0, 8, 64)]
    opt = Optimizer("adam", [W, b])
    opt.slots[0][0][:] = 1e-37  # m decays by beta_1 per step into the denormal range
    for _ in range(40):
        net.train_epoch(x, y, None, np.arange(64, dtype=np.int64), 64, opt, None)
    return opt.slots[0][0]

same = np.array_equal(train(False), train(True))
print("flushed" if same and not train(False)[:, 20:].any() else "denormal")
"""


def test_pool_threads_flush_denormals_like_the_calling_thread(tmp_path):
    # Every task on a pool thread sets flush-to-zero itself: a pool started by other OpenMP code (here
    # fastfit's own input scan) once kept denormals in half the optimizer slots, 3x slower on W2.
    import os
    import subprocess
    import sys
    pytest.importorskip("fastfit._ext._scan")
    here = os.path.dirname(os.path.abspath(__file__))
    # Run outside the repository, so the child imports the installed fastfit (with its compiled modules).
    done = subprocess.run([sys.executable, "-c", DENORMAL_CHILD, here], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "flushed"


def test_batches_with_little_matrix_work_stay_on_one_thread():
    # Below 2**19 multiply-adds per batch, starting threads costs more than it saves (the digits demo ran
    # 4x slower on two threads); larger batches use as many threads as BLAS may.
    from fastfit._ext._blas import blas_threads
    for shape, threads in ((NARROW, 1), (WIDE, min(blas_threads(), 8))):  # 88k vs 1.4M per batch of 64
        ops, params = make_ops(np.float64, list(shape["sizes"]), ["relu", "tanh", "softmax"])
        net = Network(ops, "categorical_crossentropy", [], np.float64)
        x, y = make_data(np.float64, N, shape["sizes"][0], 5, "categorical_crossentropy")
        net.train_epoch(x, y, None, np.arange(N, dtype=np.int64), BATCH, Optimizer("sgd", params), None)
        assert net.threads == threads
