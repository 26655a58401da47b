"""The counter-based dropout RNG shared by both engines (docs/architecture.md, "Dropout RNG").

The draw of element `e` (row * width + col of the batch matrix) of a dropout op with `seed` at optimizer
step `t` is `splitmix64(seed * 0x9E3779B97F4A7C15 + t * 0xBF58476D1CE4E5B9 + e)`, in wrapping uint64
arithmetic, turned into a uniform `u = (z >> 11) * 2**-53`; the element is kept iff `u >= rate`. It depends
only on (seed, step, element), so a resumed run draws the same masks.
"""
import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


def base(seed, step):
    """Counter of element 0 for (seed, step), reduced mod 2**64 (a Python int)."""
    return (int(seed) * GOLDEN + int(step) * MIX1) & MASK64


def splitmix64(z):
    """splitmix64 of a uint64 array (wrapping arithmetic; returns a new array)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def uniform(seed, step, count, offset=0):
    """The `count` uniform draws in [0, 1) (float64) of elements offset .. offset+count-1 for (seed, step)."""
    with np.errstate(over="ignore"):
        counters = np.arange(count, dtype=np.uint64) + np.uint64((base(seed, step) + int(offset)) & MASK64)
    return (splitmix64(counters) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def dropout_mask(seed, step, shape, rate, dtype, out=None, offset=0):
    """Inverted-dropout mask: 0 for dropped elements, 1 / (1 - rate) for kept ones.

    Arguments:
        seed: non-negative int of the dropout op; step: optimizer iterations before this update.
        shape: (rows, width) of the batch matrix; rate: drop probability in [0, 1).
        dtype: float dtype of the mask; out: optional preallocated array of that shape and dtype.
        offset: the element index of the mask's first element (distributed training: a rank's share of the
            global batch starts at its first row's place in it).

    Returns:
        The mask (`out` when given).
    """
    keep = uniform(seed, step, int(np.prod(shape)), offset).reshape(shape) >= rate
    if out is None:
        out = np.empty(shape, dtype=dtype)
    np.multiply(keep, np.dtype(dtype).type(1.0 / (1.0 - rate)), out=out)
    return out
