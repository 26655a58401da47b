"""The fused gather + first Dense forward of shuffled float32 batches (src_cython/fastfit/_ext/_dense_avx2.pyx).

Where the CPU has AVX2 and FMA, a float32 training batch whose first op is a Dense layer of at most 16 units
is read straight from the rows of x into that layer's product (stage 'gather+forward'). It must train the
same network as the baseline build (separate gather, then GEMM) and as the reference engine, give the same
bits on one thread and on several, and fill the batch buffers the backward pass reads.
"""
import numpy as np
import pytest

from core_helpers import Hook, Network, Optimizer, make_data, make_ops

reference = pytest.importorskip("fastfit._reference.loop")
_batch = pytest.importorskip("fastfit._ext._batch")


def _has_avx2():
    before = _batch.simd_kernels()
    try:
        _batch.simd_kernels("avx2")
    except ValueError:
        return False
    finally:
        _batch.simd_kernels(before)
    return True


needs_avx2 = pytest.mark.skipif(not _has_avx2(), reason="the fused kernel needs an x86-64 CPU with AVX2 + FMA")


@pytest.fixture
def build():
    """Select a kernel build for one test and restore the previous one after it."""
    before = _batch.simd_kernels()
    yield _batch.simd_kernels
    _batch.simd_kernels(before)


def train(engine, sizes, activations, loss, batch, n=150, dtype=np.float32, threads=2, serial=False,
          weights=False, bias=True, epochs=3, kind="rmsprop"):
    """Train a seeded chain on shuffled batches; return (network, params, slots, sums per epoch)."""
    ops, params = make_ops(dtype, list(sizes), list(activations), bias=bias)
    x, y = make_data(dtype, n, sizes[0], sizes[-1], loss)
    w = np.random.default_rng(3).uniform(0, 2, n).astype(dtype) if weights else None
    net = engine(ops, loss, ["categorical_accuracy"] if loss != "sparse_categorical_crossentropy"
                 else ["sparse_categorical_accuracy"], dtype)
    if engine is Network:
        net.split_threads, net.serial = threads, serial
    opt = Optimizer(kind, params)
    rng = np.random.default_rng(9)
    sums = [net.train_epoch(x, y, w, rng.permutation(n).astype(np.int64), batch, opt, None)
            for _ in range(epochs)]
    return net, params, [a for s in opt.slots for a in s], sums


class Trained:
    """One engine's network of a seeded 12 -> 6 softmax layer, with its parameters and SGD optimizer."""

    def __init__(self, engine):
        ops, self.params = make_ops(np.float32, [12, 6], ["softmax"])
        self.net = engine(ops, "categorical_crossentropy", [], np.float32)
        self.opt = Optimizer("sgd", self.params)

    def train(self, x, y, order, batch, hook):
        self.net.train_epoch(x, y, None, order, batch, self.opt, hook)

    def assert_close(self, other):
        for a, b in zip(self.params, other.params):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def softmax_pair():
    """(Cython network, reference network, x, y) from the same seeded weights and 100 rows of data."""
    x, y = make_data(np.float32, 100, 12, 6, "categorical_crossentropy")
    return Trained(Network), Trained(reference.Network), x, y


# (sizes, activations, loss, batch, optimizer): one unit to the widest the kernel takes, with and without a
# second layer, batches whose blocks are not multiples of 4 rows (the kernel works on groups of 4) and a last
# short batch. With 784 inputs RMSprop amplifies float32 rounding past 1e-4 in any build: SGD there.
CASES = [((30, 10), ("softmax",), "categorical_crossentropy", 64, "rmsprop"),
         ((30, 1), ("sigmoid",), "binary_crossentropy", 50, "adam"),
         ((19, 16, 4), ("relu", "softmax"), "sparse_categorical_crossentropy", 37, "rmsprop"),
         ((784, 8), ("tanh",), "mean_squared_error", 33, "sgd"),
         ((5, 3), ("linear",), "mean_absolute_error", 7, "rmsprop")]
IDS = ["softmax10", "sigmoid1", "relu16-softmax", "tanh8-784in", "linear3-batch7"]


@needs_avx2
def test_the_plan_fuses_only_a_narrow_float32_first_dense_layer(build):
    build("avx2")
    net = train(Network, (30, 10), ("softmax",), "categorical_crossentropy", 64, epochs=1)[0]
    assert net.stages[0] == ("gather+forward", 0, "rows")
    assert "gather" not in [s[0] for s in net.stages]
    wide = train(Network, (30, 17), ("softmax",), "categorical_crossentropy", 64, epochs=1)[0]
    assert wide.stages[:2] == [("gather", None, "rows"), ("forward", 0, "rows")]
    double = train(Network, (30, 10), ("softmax",), "categorical_crossentropy", 64, epochs=1, dtype=np.float64)[0]
    assert double.stages[0] == ("gather", None, "rows")
    build("baseline")
    base = train(Network, (30, 10), ("softmax",), "categorical_crossentropy", 64, epochs=1)[0]
    assert base.stages[0] == ("gather", None, "rows")


@needs_avx2
@pytest.mark.parametrize("sizes, activations, loss, batch, kind", CASES, ids=IDS)
@pytest.mark.parametrize("weights, bias", [(False, True), (True, False)], ids=["bias", "weighted-nobias"])
def test_fused_build_trains_like_the_baseline_build_and_the_reference(build, sizes, activations, loss, batch,
                                                                      kind, weights, bias):
    want = train(reference.Network, sizes, activations, loss, batch, weights=weights, bias=bias, kind=kind)
    results = {}
    for name in ("baseline", "avx2"):
        build(name)
        results[name] = train(Network, sizes, activations, loss, batch, weights=weights, bias=bias, kind=kind)
    assert results["avx2"][0].stages[0][0] == "gather+forward"
    for name, got in results.items():
        for a, b in zip(got[1] + got[2], want[1] + want[2]):
            # The fused kernel sums each dot product in another order than BLAS: entries near 0 (after
            # cancellation) may differ by a few float32 roundings of the array's largest entries.
            scale = max(np.abs(b).max(), 1e-3)
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale, err_msg=name)
        # seen and loss sums (an accuracy count can flip on a near tie)
        np.testing.assert_allclose(np.array(got[3])[:, :2], np.array(want[3])[:, :2], rtol=1e-4, err_msg=name)


@needs_avx2
@pytest.mark.parametrize("batch", [50, 64, 127], ids=["blocks-of-25", "blocks-of-32", "odd-blocks"])
def test_fused_build_gives_the_same_bits_on_one_thread_and_on_two(build, batch):
    build("avx2")
    one = train(Network, (23, 10, 3), ("relu", "softmax"), "categorical_crossentropy", batch, n=300,
                serial=True)
    two = train(Network, (23, 10, 3), ("relu", "softmax"), "categorical_crossentropy", batch, n=300)
    assert two[0].stages[0][0] == "gather+forward"
    for a, b in zip(one[1] + one[2], two[1] + two[2]):
        np.testing.assert_array_equal(a, b)


@needs_avx2
def test_unshuffled_batches_skip_the_copy_and_still_train(build):
    # Consecutive rows are read in place (no gather): the fused stage then runs the plain forward.
    build("avx2")
    got, want, x, y = softmax_pair()
    order = np.arange(100, dtype=np.int64)
    for _ in range(2):
        got.train(x, y, order, 32, Hook(begin=False))
        want.train(x, y, order, 32, None)
    assert got.net.stages[0][0] == "gather+forward"
    got.assert_close(want)


@needs_avx2
def test_switching_builds_during_a_call_keeps_the_running_plan_valid(build):
    # A hook (or another thread) may switch builds while a call planned with the fused stage runs: its later
    # batches must still find the kernel (it was once unset, leaving a NULL kernel to call).
    build("avx2")
    got, want, x, y = softmax_pair()
    order = np.random.default_rng(5).permutation(100).astype(np.int64)
    hook = Hook(begin=False, on_call=lambda *args: _batch.simd_kernels("baseline"))
    got.train(x, y, order, 16, hook)
    assert got.net.stages[0][0] == "gather+forward" and len(hook.calls) == 7
    want.train(x, y, order, 16, None)
    got.assert_close(want)
    got.train(x, y, order, 16, None)  # planned afresh: no fused stage
    assert got.net.stages[0][0] == "gather"
