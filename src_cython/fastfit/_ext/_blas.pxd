# Thin row-major wrappers over scipy.linalg.cython_blas, fused over float/double, callable without the GIL.
# All matrices are C-contiguous (row-major); leading dimensions are row strides in elements.
from cython cimport floating

cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
               const floating* a, int lda, const floating* b, int ldb,
               floating beta, floating* c, int ldc) noexcept nogil
cdef void gemv(bint trans_a, int m, int n, floating alpha, const floating* a, int lda,
               const floating* x, floating beta, floating* y) noexcept nogil
cdef void axpy(int n, floating alpha, const floating* x, floating* y) noexcept nogil
cdef void scal(int n, floating alpha, floating* x) noexcept nogil
cdef floating dot(int n, const floating* x, const floating* y) noexcept nogil
cdef int pin_one_thread() noexcept nogil
cdef void unpin(int previous) noexcept nogil
