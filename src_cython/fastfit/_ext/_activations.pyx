# cython: cdivision=True
"""Activation passes over row-major (rows x cols) matrices, in place.

`forward_rows` adds the bias (if any) and applies the activation in one pass over the pre-activation, which
Dense writes with GEMM. `backward_rows` multiplies the incoming gradient by f'(x), computed from y = f(x).
Definitions follow Keras 2.2; softmax is over the last axis with the row maximum subtracted.
"""
from cython cimport floating

cdef double SELU_ALPHA = 1.6732632423543772848170429916717
cdef double SELU_SCALE = 1.0507009873554804934193349852946


cdef void forward_rows(int code, floating* z, const floating* bias, Py_ssize_t rows,
                       Py_ssize_t cols) noexcept nogil:
    """z = f(z + bias) in place; `bias` may be NULL."""
    cdef Py_ssize_t i, j
    cdef floating* r
    cdef floating v, m, s
    cdef floating alpha = <floating>SELU_ALPHA
    cdef floating scale = <floating>SELU_SCALE
    for i in range(rows):
        r = z + i * cols
        if bias != NULL:
            for j in range(cols):
                r[j] = r[j] + bias[j]
        if code == A_LINEAR:
            pass
        elif code == A_RELU:
            for j in range(cols):
                r[j] = r[j] if r[j] > 0 else 0
        elif code == A_SIGMOID:
            for j in range(cols):
                r[j] = sigmoid(r[j])
        elif code == A_TANH:
            for j in range(cols):
                r[j] = f_tanh(r[j])
        elif code == A_SOFTMAX:
            m = r[0]
            for j in range(1, cols):
                if r[j] > m:
                    m = r[j]
            s = 0
            for j in range(cols):
                r[j] = f_exp(r[j] - m)
                s = s + r[j]
            s = 1 / s
            for j in range(cols):
                r[j] = r[j] * s
        elif code == A_ELU:
            for j in range(cols):
                v = r[j]
                r[j] = v if v > 0 else f_expm1(v)
        elif code == A_SELU:
            for j in range(cols):
                v = r[j]
                r[j] = scale * v if v > 0 else scale * alpha * f_expm1(v)
        elif code == A_SOFTPLUS:
            for j in range(cols):
                r[j] = softplus(r[j])
        elif code == A_SOFTSIGN:
            for j in range(cols):
                r[j] = r[j] / (1 + f_abs(r[j]))
        elif code == A_HARD_SIGMOID:
            for j in range(cols):
                v = <floating>0.2 * r[j] + <floating>0.5
                r[j] = 0 if v < 0 else (1 if v > 1 else v)
        elif code == A_EXPONENTIAL:
            for j in range(cols):
                r[j] = f_exp(r[j])


cdef void backward_rows(int code, const floating* y, floating* g, Py_ssize_t rows,
                        Py_ssize_t cols) noexcept nogil:
    """g *= f'(x) in place, with f' written in terms of the output y = f(x)."""
    cdef Py_ssize_t i, j, n = rows * cols
    cdef const floating* yr
    cdef floating* gr
    cdef floating v, s
    cdef floating scale = <floating>SELU_SCALE
    cdef floating sa = <floating>(SELU_SCALE * SELU_ALPHA)
    if code == A_LINEAR:
        return
    elif code == A_RELU:
        for i in range(n):
            g[i] = g[i] if y[i] > 0 else 0
    elif code == A_SIGMOID:
        for i in range(n):
            g[i] = g[i] * y[i] * (1 - y[i])
    elif code == A_TANH:
        for i in range(n):
            g[i] = g[i] * (1 - y[i] * y[i])
    elif code == A_SOFTMAX:
        # Jacobian-vector product of softmax: y * (g - sum(g * y)), row by row.
        for i in range(rows):
            yr = y + i * cols
            gr = g + i * cols
            s = 0
            for j in range(cols):
                s = s + gr[j] * yr[j]
            for j in range(cols):
                gr[j] = yr[j] * (gr[j] - s)
    elif code == A_ELU:
        for i in range(n):
            g[i] = g[i] if y[i] > 0 else g[i] * (y[i] + 1)
    elif code == A_SELU:
        for i in range(n):
            g[i] = g[i] * scale if y[i] > 0 else g[i] * (y[i] + sa)
    elif code == A_SOFTPLUS:
        # sigmoid(x) = 1 - exp(-softplus(x)) = -expm1(-y)
        for i in range(n):
            g[i] = -g[i] * f_expm1(-y[i])
    elif code == A_SOFTSIGN:
        # 1 / (1 + |x|)^2 = (1 - |y|)^2
        for i in range(n):
            v = 1 - f_abs(y[i])
            g[i] = g[i] * v * v
    elif code == A_HARD_SIGMOID:
        for i in range(n):
            g[i] = g[i] * <floating>0.2 if (y[i] > 0 and y[i] < 1) else 0
    elif code == A_EXPONENTIAL:
        for i in range(n):
            g[i] = g[i] * y[i]
