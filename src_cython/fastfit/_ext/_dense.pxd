# Dense layer forward/backward over preallocated row-major workspaces.
from cython cimport floating

cdef void dense_forward(const floating* x, const floating* w, const floating* b, int act,
                        Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out, floating* out) noexcept nogil
cdef void dense_backward_rows(const floating* w, int act, const floating* out, floating* g_out,
                              Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out, floating* g_x) noexcept nogil
cdef void dense_param_grads(const floating* x, const floating* g, Py_ssize_t rows, Py_ssize_t n_in,
                            Py_ssize_t n_out, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t c0, Py_ssize_t c1,
                            floating* g_w, floating* g_b) noexcept nogil
