# cython: cdivision=True
"""The optimizer update rules of `_optim`, compiled for x86-64 CPUs with AVX2 and FMA.

The rules are square roots and divisions over every parameter: with 8 floats per instruction instead of the
4 of the x86-64 baseline, Adam's step over a large layer takes about half the time. `_batch` imports this
module only when the CPU has both extensions (it would not run elsewhere).
"""
from cython cimport floating
from libc.math cimport sqrt, sqrtf

from fastfit._ext._optim cimport (Hyper, Step, update_float, update_double, O_SGD, O_RMSPROP, O_ADAGRAD,
                                  O_ADADELTA, O_ADAM, O_ADAMAX, O_NADAM)

include "_optim_rules.pxi"


def addresses():
    """Return the addresses of the float and double `update` for `_batch`'s dispatch."""
    cdef update_float f32 = update[float]
    cdef update_double f64 = update[double]
    return <size_t>f32, <size_t>f64
