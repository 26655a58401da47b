# cython: cdivision=True
"""Row-major BLAS wrappers (GEMM, GEMV, AXPY, SCAL, DOT) over scipy's Fortran BLAS.

Fortran BLAS is column-major. A row-major matrix is the column-major view of its transpose, so the row-major
product C = op(A) @ op(B) is computed as the column-major product C^T = op(B)^T @ op(A)^T: swap the operands
and the m/n sizes, keep the transpose flags.
"""
import os

from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv, saxpy, daxpy, sscal, dscal, sdot, ddot

# Thread policy. OpenBLAS wakes its worker threads for any GEMM above a tiny size; for the small products of
# a training step (such as 128x784x10) the hand-off costs about as much as it saves, and on a busy machine
# the spinning workers make it slower still. GEMMs with m*n*k below SMALL_GEMM therefore run on the
# calling thread only, through OpenBLAS's `openblas_set_num_threads_local` when scipy's BLAS provides it.
ctypedef int (*set_threads_fn)(int) noexcept nogil
cdef set_threads_fn _set_threads = NULL
cdef long long SMALL_GEMM = 4 * 1024 * 1024
# Set while the engine runs GEMMs from several threads at once (each on its own thread): the per-call switch
# below would then race on OpenBLAS's global thread count.
cdef bint _pinned = False


def _symbol_address(*names):
    """Address of the first of `names` found in scipy's BLAS library, or 0."""
    import ctypes
    from scipy.linalg import cython_blas
    try:
        lib = ctypes.CDLL(cython_blas.__file__)
    except OSError:
        return 0
    for name in names:
        try:
            return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value or 0
        except AttributeError:
            pass
    return 0


_address = _symbol_address("openblas_set_num_threads_local")
if _address:
    _set_threads = <set_threads_fn><size_t>_address
_get_threads = _symbol_address("scipy_openblas_get_num_threads", "openblas_get_num_threads")
_get_threads_fn = None  # made once: a ctypes prototype per call cost more than a one-row predict's product
if _get_threads:
    import ctypes
    _get_threads_fn = ctypes.CFUNCTYPE(ctypes.c_int)(_get_threads)


def small_gemm_threshold(value=None):
    """Return (and optionally set) the m*n*k size below which GEMM runs single-threaded (0 disables).

    The default, 4 * 2**20, can also be set with the environment variable FASTFIT_SMALL_GEMM.
    """
    global SMALL_GEMM
    if value is not None:
        SMALL_GEMM = int(value)
    return SMALL_GEMM


def blas_threads():
    """Number of threads scipy's OpenBLAS may use (1 when it cannot be asked)."""
    if _get_threads_fn is None:
        return 1
    return int(_get_threads_fn())


if os.environ.get("FASTFIT_SMALL_GEMM", "").isdigit():
    small_gemm_threshold(int(os.environ["FASTFIT_SMALL_GEMM"]))


cdef int pin_one_thread() noexcept nogil:
    """Make every GEMM run on its calling thread until `unpin`; return the previous count (0: not pinned).

    Call from one thread only, outside any parallel region.
    """
    global _pinned
    if _set_threads == NULL or _pinned:
        return 0
    _pinned = True
    return _set_threads(1)


cdef void unpin(int previous) noexcept nogil:
    """Undo `pin_one_thread` (given its return value)."""
    global _pinned
    if previous > 0:
        _pinned = False
        if previous > 1:
            _set_threads(previous)


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
               const floating* a, int lda, const floating* b, int ldb,
               floating beta, floating* c, int ldc) noexcept nogil:
    """C (m x n) = alpha * op(A) @ op(B) + beta * C, op(A) is m x k, op(B) is k x n, all row-major."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef int previous = 0
    if _set_threads != NULL and not _pinned and <long long>m * n * k < SMALL_GEMM:
        previous = _set_threads(1)
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda, &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda, &beta, c, &ldc)
    if previous > 1:
        _set_threads(previous)


cdef void gemv(bint trans_a, int m, int n, floating alpha, const floating* a, int lda,
               const floating* x, floating beta, floating* y) noexcept nogil:
    """y = alpha * op(A) @ x + beta * y for a row-major m x n matrix A."""
    # The row-major A is the column-major n x m matrix A^T, so the transpose flag flips.
    # Like a small GEMM, it runs on the calling thread (OpenBLAS would wake its threads for a few us of work).
    cdef char t = b'N' if trans_a else b'T'
    cdef int one = 1
    cdef int previous = 0
    if _set_threads != NULL and not _pinned and <long long>m * n < SMALL_GEMM:
        previous = _set_threads(1)
    if floating is float:
        sgemv(&t, &n, &m, &alpha, <float*>a, &lda, <float*>x, &one, &beta, y, &one)
    else:
        dgemv(&t, &n, &m, &alpha, <double*>a, &lda, <double*>x, &one, &beta, y, &one)
    if previous > 1:
        _set_threads(previous)


cdef void axpy(int n, floating alpha, const floating* x, floating* y) noexcept nogil:
    """y += alpha * x."""
    cdef int one = 1
    if floating is float:
        saxpy(&n, &alpha, <float*>x, &one, y, &one)
    else:
        daxpy(&n, &alpha, <double*>x, &one, y, &one)


cdef void scal(int n, floating alpha, floating* x) noexcept nogil:
    """x *= alpha."""
    cdef int one = 1
    if floating is float:
        sscal(&n, &alpha, x, &one)
    else:
        dscal(&n, &alpha, x, &one)


cdef floating dot(int n, const floating* x, const floating* y) noexcept nogil:
    """Return sum(x * y)."""
    cdef int one = 1
    if floating is float:
        return sdot(&n, <float*>x, &one, <float*>y, &one)
    else:
        return ddot(&n, <double*>x, &one, <double*>y, &one)
