# GIL-free kernels of one batch (see _batch.pyx), working on the State of _state.pxd.
from cython cimport floating
from libc.stdint cimport int64_t

from fastfit._ext._state cimport State, Call

cdef floating* forward(State* s, floating* x, Py_ssize_t rows, bint training) noexcept nogil
cdef void backward(State* s, floating* x, Py_ssize_t rows) noexcept nogil
cdef void score(State* s, floating* out, floating* y, int64_t* labels, floating* w, Py_ssize_t rows,
                bint training) noexcept nogil
cdef void accumulate(State* s, Py_ssize_t size) noexcept nogil
cdef void optimizer_step(State* s, floating* tag) noexcept nogil
cdef bint gather(State* s, Call* c, floating* tag, Py_ssize_t start, Py_ssize_t size) noexcept nogil
