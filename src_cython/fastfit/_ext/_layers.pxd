# Kernels of the ops beyond Dense, activation and dropout (see _layers.pyx): batch normalization, the
# parametric activations, PReLU, the noise ops, activity and weight penalties, weight constraints.
from cython cimport floating
from libc.stdint cimport uint64_t

# Noise kinds (Op.sub of a K_NOISE op), in the order of names.NOISE_OPS.
cdef enum:
    N_GAUSSIAN_NOISE = 0
    N_GAUSSIAN_DROPOUT = 1
    N_ALPHA_DROPOUT = 2

# Constraint kinds, in the order of names.CONSTRAINTS.
cdef enum:
    C_MAX_NORM = 0
    C_NON_NEG = 1
    C_UNIT_NORM = 2
    C_MIN_MAX_NORM = 3

cdef void bn_train_forward(const floating* x, floating* out, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t c0,
                           Py_ssize_t c1, double* mean, double* inv, const floating* gamma, const floating* beta,
                           floating* moving_mean, floating* moving_var, double momentum, double eps,
                           bint update, int act) noexcept nogil
cdef void bn_infer_forward(const floating* x, floating* out, Py_ssize_t rows, Py_ssize_t n,
                           const floating* gamma, const floating* beta, const floating* moving_mean,
                           const floating* moving_var, double eps, int act) noexcept nogil
cdef void bn_backward(const floating* x, const floating* g, floating* gx, Py_ssize_t rows, Py_ssize_t n,
                      Py_ssize_t c0, Py_ssize_t c1, const double* mean, const double* inv, double* sums,
                      const floating* gamma, floating* ggamma, floating* gbeta) noexcept nogil
cdef void relu_forward(const floating* x, floating* out, Py_ssize_t count, double slope, double max_value,
                       bint has_max, double threshold) noexcept nogil
cdef void relu_backward(const floating* x, floating* g, Py_ssize_t count, double slope, double max_value,
                        bint has_max, double threshold) noexcept nogil
cdef void elu_forward(const floating* x, floating* out, Py_ssize_t count, double alpha) noexcept nogil
cdef void elu_backward(const floating* x, const floating* y, floating* g, Py_ssize_t count,
                       double alpha) noexcept nogil
cdef void prelu_forward(const floating* x, floating* out, Py_ssize_t rows, Py_ssize_t n, const floating* alpha,
                        bint shared) noexcept nogil
cdef void prelu_input_grad(const floating* x, const floating* g, floating* gx, Py_ssize_t rows, Py_ssize_t n,
                           const floating* alpha, bint shared) noexcept nogil
cdef void prelu_alpha_grad(const floating* x, const floating* g, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t c0,
                           Py_ssize_t c1, bint shared, floating* galpha) noexcept nogil
cdef void noise_forward(int kind, const floating* x, floating* out, floating* mask, Py_ssize_t count,
                        Py_ssize_t e0, double value, uint64_t base) noexcept nogil
cdef double activity_penalty(const floating* y, Py_ssize_t count, double l1, double l2) noexcept nogil
cdef void activity_backward(const floating* y, floating* g, Py_ssize_t count, double l1, double l2) noexcept nogil
cdef double weight_penalty(const floating* w, floating* g, Py_ssize_t count, double l1, double l2) noexcept nogil
cdef void constrain(int kind, floating* w, Py_ssize_t rows, Py_ssize_t cols, int axis, double max_value,
                    double min_value, double rate) noexcept nogil
