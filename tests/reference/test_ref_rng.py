"""The splitmix64 dropout RNG: bit-exact against plain Python, deterministic, with the right keep rate."""
import numpy as np
import pytest

from fastfit._reference import rng
from ref_helpers import keep_py, splitmix64_py


def test_splitmix64_matches_python_integers():
    z = np.array([0, 1, 2**63, 2**64 - 1, 0x123456789ABCDEF], dtype=np.uint64)
    expected = [splitmix64_py(int(v)) for v in z]
    assert [int(v) for v in rng.splitmix64(z)] == expected


def test_mask_elements_follow_the_counter_formula(dtype):
    seed, step, rate = 2**62 + 12345, 7, 0.3
    mask = rng.dropout_mask(seed, step, (4, 5), rate, dtype)
    keep = np.array([keep_py(seed, step, e, rate) for e in range(20)]).reshape(4, 5)
    assert mask.dtype == dtype
    np.testing.assert_array_equal(mask != 0, keep)
    np.testing.assert_allclose(mask[keep], dtype(1 / (1 - rate)))


def test_mask_is_deterministic_and_depends_on_seed_and_step():
    a = rng.dropout_mask(3, 10, (50, 40), 0.5, np.float64)
    np.testing.assert_array_equal(a, rng.dropout_mask(3, 10, (50, 40), 0.5, np.float64))
    assert not np.array_equal(a, rng.dropout_mask(3, 11, (50, 40), 0.5, np.float64))
    assert not np.array_equal(a, rng.dropout_mask(4, 10, (50, 40), 0.5, np.float64))


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_keep_rate(rate):
    mask = rng.dropout_mask(42, 0, (400, 250), rate, np.float32)
    # 100000 draws: the standard error of the kept fraction is below 0.0016.
    assert np.mean(mask != 0) == pytest.approx(1 - rate, abs=0.01)
    assert mask.mean() == pytest.approx(1.0, abs=0.03)  # inverted dropout keeps the expectation


def test_no_overflow_warnings_for_huge_seeds():
    with np.errstate(all="raise"):
        rng.dropout_mask(2**64 - 1, 2**40, (3, 3), 0.5, np.float64)
