# GIL-free kernels of one batch (see _batch.pyx), working on the State of _state.pxd.
from cython cimport floating

from fastfit._ext._state cimport State, Call

cdef void run_batch(State* s, Call* c, floating* tag, int mode, Py_ssize_t start, Py_ssize_t size,
                    floating* out) noexcept nogil
cdef void forward_block(State* s, Call* c, floating* tag, int mode, Py_ssize_t j, char** act_base,
                        Py_ssize_t slot_row, floating* out, double* block_stats, double* hist) noexcept nogil
cdef void add_block_stats(State* s, Call* c, const double* block_stats) noexcept nogil
cdef void accumulate(State* s, Py_ssize_t size) noexcept nogil
cdef bint gather_dense_available() noexcept nogil
cdef double weight_penalties(State* s, floating* tag) noexcept nogil
