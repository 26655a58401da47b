# cython: cdivision=True
"""The finiteness scan of the input checks: one read of the data at memory speed, on several threads.

`fastfit.engine.data.check_finite` calls it before any training code runs (the NumPy twin there is used when
the compiled modules are missing). An element is NaN or infinite exactly when all its exponent bits are set;
counting those with integer operations vectorises, where a floating-point sum would not without fast-math.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport uint32_t, uint64_t

cnp.import_array()

cdef Py_ssize_t CHUNK = 1 << 18       # elements per task: a task costs far more than handing it out


ctypedef fused bits_t:
    uint32_t
    uint64_t


cdef Py_ssize_t _count(const bits_t* bits, Py_ssize_t n) noexcept nogil:
    """How many of the n values (float32 or float64 bit patterns) have all exponent bits set."""
    cdef bits_t exponent
    if bits_t is uint32_t:
        exponent = 0x7f800000u
    else:
        exponent = 0x7ff0000000000000u
    cdef Py_ssize_t i
    cdef bits_t count = 0
    for i in range(n):
        count += (bits[i] & exponent) == exponent
    return count


def count_nonfinite(cnp.ndarray array, int threads=1):
    """Return how many elements of `array` (C-contiguous float32 or float64, any shape) are NaN or infinite.

    Raises:
        ValueError: another dtype or layout.
    """
    if array.dtype not in (np.float32, np.float64) or not array.flags.c_contiguous:
        raise ValueError(f"count_nonfinite: expected a C-contiguous float32 or float64 array, got a "
                         f"{'C-contiguous' if array.flags.c_contiguous else 'strided'} {array.dtype} array")
    cdef Py_ssize_t n = array.size, chunks = (n + CHUNK - 1) // CHUNK, k, lo, total = 0
    cdef char* data = <char*>cnp.PyArray_DATA(array)
    cdef bint single = array.dtype == np.float32
    cdef int workers = max(1, min(threads, chunks))
    with nogil:
        for k in prange(chunks, num_threads=workers, schedule="static"):
            lo = k * CHUNK
            if single:
                total += _count(<const uint32_t*>data + lo, min(CHUNK, n - lo))
            else:
                total += _count(<const uint64_t*>data + lo, min(CHUNK, n - lo))
    return total
