# cython: cdivision=True
"""Dense layer kernels: out = f(x @ W + b) forward, and the gradients of W, b and x backward.

The activation f is fused into the layer: GEMM writes the pre-activation into `out`, then one pass adds the
bias and applies f in place, so the layer keeps a single (rows x n_out) buffer. Each kernel computes a
slice (of rows by its pointers, of columns by its lo/hi or c0/c1 arguments), so threads can share a layer.
The activation derivative is `_activations.backward_rows`, applied to the gradient before these kernels.
"""
from cython cimport floating
from libc.string cimport memset

from fastfit._ext._blas cimport gemm, gemv
from fastfit._ext._activations cimport forward_rows, A_LINEAR


cdef void dense_forward(const floating* x, const floating* w, const floating* b, int act,
                        Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t c0, Py_ssize_t c1,
                        floating* out) noexcept nogil:
    """Columns c0..c1 of out (rows x n_out) = act(x (rows x n_in) @ w (n_in x n_out) + b); `b` may be NULL.

    A slice of the columns (one per thread) needs an element-wise `act`; all columns take any activation.
    """
    cdef Py_ssize_t r
    if c1 <= c0:
        return
    if rows == 1:  # one row: a GEMM would first pack (copy) all of w; GEMV reads it once
        gemv(True, <int>n_in, <int>(c1 - c0), <floating>1, w + c0, <int>n_out, x, <floating>0, out + c0)
    else:
        gemm(False, False, <int>rows, <int>(c1 - c0), <int>n_in, <floating>1, x, <int>n_in, w + c0, <int>n_out,
             <floating>0, out + c0, <int>n_out)
    if act == A_LINEAR and b == NULL:
        return
    if c0 == 0 and c1 == n_out:
        forward_rows(act, out, b, rows, n_out)
    else:
        for r in range(rows):
            forward_rows(act, out + r * n_out + c0, b + c0 if b != NULL else NULL, 1, c1 - c0)


cdef void dense_forward_depth(const floating* x, const floating* w, Py_ssize_t rows, Py_ssize_t n_in,
                              Py_ssize_t n_out, Py_ssize_t lo, Py_ssize_t hi, floating* out) noexcept nogil:
    """out (rows x n_out) = x[:, lo:hi] @ w[lo:hi, :]: inputs lo..hi's share of the pre-activation.

    The shares of all input slices sum to x @ w (`dense_sum_partials` adds them, then bias and activation).
    """
    if hi <= lo:
        memset(out, 0, rows * n_out * sizeof(floating))
        return
    gemm(False, False, <int>rows, <int>n_out, <int>(hi - lo), <floating>1, x + lo, <int>n_in, w + lo * n_out,
         <int>n_out, <floating>0, out, <int>n_out)


cdef void dense_sum_partials(floating* out, const floating* partials, int n_partials, Py_ssize_t stride,
                             const floating* b, int act, Py_ssize_t rows, Py_ssize_t n_out) noexcept nogil:
    """out (rows x n_out) += partials[k * stride : ...] for k < n_partials, in order; then bias and activation."""
    cdef Py_ssize_t e, n = rows * n_out
    cdef int k
    cdef const floating* part
    for k in range(n_partials):
        part = partials + k * stride
        for e in range(n):
            out[e] += part[e]
    if act != A_LINEAR or b != NULL:
        forward_rows(act, out, b, rows, n_out)


cdef void dense_input_grad(const floating* g, const floating* w, Py_ssize_t rows, Py_ssize_t n_in,
                           Py_ssize_t n_out, Py_ssize_t lo, Py_ssize_t hi, floating* g_x) noexcept nogil:
    """Columns lo..hi of g_x (rows x n_in) = g (rows x n_out, d loss / d pre-activation) @ w^T."""
    if hi > lo:
        gemm(False, True, <int>rows, <int>(hi - lo), <int>n_out, <floating>1, g, <int>n_out, w + lo * n_out,
             <int>n_out, <floating>0, g_x + lo, <int>n_in)


cdef void dense_param_grads(const floating* x, const floating* g, Py_ssize_t rows, Py_ssize_t n_in,
                            Py_ssize_t n_out, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t c0, Py_ssize_t c1,
                            floating* g_w, floating* g_b) noexcept nogil:
    """Rows lo..hi of g_w = x^T g (n_in x n_out) and entries c0..c1 of g_b = column sums of g.

    `g` is the gradient of the pre-activation over all `rows` rows of the batch; `g_b` may be NULL. Slices of
    g_w and g_b can be computed apart (one per thread).
    """
    cdef Py_ssize_t r, j
    cdef const floating* gr
    if hi > lo:
        gemm(True, False, <int>(hi - lo), <int>n_out, <int>rows, <floating>1, x + lo, <int>n_in, g, <int>n_out,
             <floating>0, g_w + lo * n_out, <int>n_out)
    if g_b != NULL and c1 > c0:
        memset(g_b + c0, 0, (c1 - c0) * sizeof(floating))
        for r in range(rows):
            gr = g + r * n_out
            for j in range(c0, c1):
                g_b[j] += gr[j]
