# Dense layer forward/backward over preallocated row-major workspaces, by slices (see _dense.pyx).
from cython cimport floating

cdef void dense_forward(const floating* x, const floating* w, const floating* b, int act,
                        Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t c0, Py_ssize_t c1,
                        floating* out) noexcept nogil
cdef void dense_forward_depth(const floating* x, const floating* w, Py_ssize_t rows, Py_ssize_t n_in,
                              Py_ssize_t n_out, Py_ssize_t lo, Py_ssize_t hi, floating* out) noexcept nogil
cdef void dense_sum_partials(floating* out, const floating* partials, int n_partials, Py_ssize_t stride,
                             const floating* b, int act, Py_ssize_t rows, Py_ssize_t n_out) noexcept nogil
cdef void dense_input_grad(const floating* g, const floating* w, Py_ssize_t rows, Py_ssize_t n_in,
                           Py_ssize_t n_out, Py_ssize_t lo, Py_ssize_t hi, floating* g_x) noexcept nogil
cdef void dense_param_grads(const floating* x, const floating* g, Py_ssize_t rows, Py_ssize_t n_in,
                            Py_ssize_t n_out, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t c0, Py_ssize_t c1,
                            floating* g_w, floating* g_b) noexcept nogil
