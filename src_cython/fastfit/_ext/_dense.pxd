# Dense layer forward/backward over preallocated row-major workspaces.
from cython cimport floating

cdef void dense_forward(const floating* x, const floating* w, const floating* b, int act,
                        Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out, floating* out) noexcept nogil
cdef void dense_backward(const floating* x, const floating* w, int act, const floating* out, floating* g_out,
                         Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out,
                         floating* g_w, floating* g_b, floating* g_x) noexcept nogil
