# In-place optimizer update rules (Keras 2.2), one pass over each parameter array.
from cython cimport floating

# Codes in the order of the optimizer kinds in docs/architecture.md.
cdef enum:
    O_SGD = 0
    O_RMSPROP = 1
    O_ADAGRAD = 2
    O_ADADELTA = 3
    O_ADAM = 4
    O_ADAMAX = 5
    O_NADAM = 6

cdef struct Hyper:
    # Read from the optimizer object at the start of a call (lr also after every hook call).
    int kind
    bint nesterov
    bint amsgrad
    double lr
    double decay
    double eps
    double momentum
    double rho
    double beta_1
    double beta_2
    double schedule_decay

cdef struct Step:
    # The scalars of one update, computed in float64 by `prepare_step`.
    double lr           # effective step size (lr_t, or the bias-corrected lr of Adam/Adamax)
    double mu_t         # Nadam
    double mu_t1
    double g_div        # Nadam: 1 - m_schedule_new
    double m_div        # Nadam: 1 - m_schedule_next
    double v_div        # Nadam: 1 - beta_2^t

cdef void prepare_step(const Hyper* h, long long iterations, double* m_schedule, Step* s) noexcept nogil
cdef void update(const Hyper* h, const Step* s, Py_ssize_t n, floating* p, const floating* g,
                 floating* s0, floating* s1, floating* s2) noexcept nogil

# `update` specialised for one dtype: `_batch` calls it through these pointers (baseline or AVX2 build).
ctypedef void (*update_float)(const Hyper* h, const Step* s, Py_ssize_t n, float* p, const float* g,
                              float* s0, float* s1, float* s2) noexcept nogil
ctypedef void (*update_double)(const Hyper* h, const Step* s, Py_ssize_t n, double* p, const double* g,
                               double* s0, double* s1, double* s2) noexcept nogil
