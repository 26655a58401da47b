# Activation codes, per-element kernels and their derivatives (expressed through the output y = f(x), so a
# layer only has to keep its output for the backward pass), and the matrix passes built on them.
from cython cimport floating
from libc.math cimport exp, expf, expm1, expm1f, log1p, log1pf, tanh, tanhf, fabs, fabsf

# Codes in the order of the canonical activation names (docs/architecture.md).
cdef enum:
    A_LINEAR = 0
    A_RELU = 1
    A_SIGMOID = 2
    A_TANH = 3
    A_SOFTMAX = 4
    A_ELU = 5
    A_SELU = 6
    A_SOFTPLUS = 7
    A_SOFTSIGN = 8
    A_HARD_SIGMOID = 9
    A_EXPONENTIAL = 10


# Precision-matched libm calls: float math for float data, double math for double data.
cdef inline floating f_exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)

cdef inline floating f_expm1(floating x) noexcept nogil:
    if floating is float:
        return expm1f(x)
    else:
        return expm1(x)

cdef inline floating f_log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)

cdef inline floating f_tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)

cdef inline floating f_abs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline floating sigmoid(floating x) noexcept nogil:
    return 1 / (1 + f_exp(-x))


cdef inline floating softplus(floating x) noexcept nogil:
    # log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|)).
    if x > 0:
        return x + f_log1p(f_exp(-x))
    return f_log1p(f_exp(x))


cdef void forward_rows(int code, floating* z, const floating* bias, Py_ssize_t rows,
                       Py_ssize_t cols) noexcept nogil
cdef void backward_rows(int code, const floating* y, floating* g, Py_ssize_t rows,
                        Py_ssize_t cols) noexcept nogil
