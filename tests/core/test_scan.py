"""The compiled finiteness scan of the input checks against NumPy's count (src_cython/fastfit/_ext/_scan.pyx)."""
import numpy as np
import pytest

scan = pytest.importorskip("fastfit._ext._scan")
CHUNK = 1 << 18


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_counts_nan_and_both_infinities_anywhere(dtype, threads):
    x = np.random.default_rng(0).normal(size=2 * CHUNK + 1001).astype(dtype)
    info = np.finfo(dtype)
    x[[1, 7]] = [info.max, -info.max]        # the largest finite values are finite
    x[[2, 3]] = [info.tiny / 4, -info.tiny]  # so are subnormals
    bad = [0, CHUNK - 1, CHUNK, 2 * CHUNK, x.size - 1]
    x[bad] = [np.nan, np.inf, -np.inf, -np.nan, np.nan]
    assert scan.count_nonfinite(x, threads) == len(bad) == np.count_nonzero(~np.isfinite(x))
    assert scan.count_nonfinite(x.reshape(1, -1), threads) == len(bad)  # any shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_and_empty_arrays_count_zero(dtype):
    assert scan.count_nonfinite(np.ones((300, 7), dtype), 2) == 0
    assert scan.count_nonfinite(np.empty((0, 784), dtype), 2) == 0


def test_other_dtypes_and_layouts_are_refused():
    with pytest.raises(ValueError, match="C-contiguous float32 or float64"):
        scan.count_nonfinite(np.ones((4, 4), np.float16))
    with pytest.raises(ValueError, match="strided"):
        scan.count_nonfinite(np.ones((4, 4))[:, ::2])


def test_the_numpy_twin_counts_the_same():
    # Strided arrays take the NumPy path of fastfit.engine.data (the one used without compiled modules).
    from fastfit.engine import data
    x = np.random.default_rng(1).normal(size=(64, 100)).astype(np.float32)
    x[0, 0] = np.finfo(np.float32).max  # overflows the sum of squares: the exact count must say 0
    assert data._count_nonfinite(x[:, ::2]) == 0
    x[[3, 9, 40], [2, 4, 98]] = [np.nan, np.inf, -np.inf]
    assert data._count_nonfinite(x[:, ::2]) == 3 == scan.count_nonfinite(np.ascontiguousarray(x[:, ::2]), 2)
