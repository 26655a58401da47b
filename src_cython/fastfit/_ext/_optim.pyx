# cython: cdivision=True
"""Optimizer update rules of Keras 2.2 (docs/architecture.md, "The optimizer object the engines read").

`prepare_step` computes the scalars of one step in float64 (decayed lr, bias corrections, Nadam's momentum
schedule); `update` applies them to one parameter array and its slot arrays in a single fused pass, in the
network dtype. Slots: sgd (moments), rmsprop/adagrad (accumulators), adadelta (accumulators, deltas),
adam (m, v[, vhat]), adamax (m, u), nadam (m, v).

`update` is written once, in `_optim_rules.pxi`; this module compiles it for any CPU of the platform,
`_optim_avx2` for x86-64 CPUs with AVX2 and FMA, and `_batch` calls the faster one the CPU runs.
"""
from cython cimport floating
from libc.math cimport sqrt, sqrtf, pow


cdef void prepare_step(const Hyper* h, long long iterations, double* m_schedule, Step* s) noexcept nogil:
    """Fill `s` for the update number `iterations + 1`; advances `m_schedule` for Nadam."""
    cdef double t = <double>(iterations + 1)
    cdef double lr = h.lr
    cdef double ms_new
    if h.decay > 0 and h.kind != O_NADAM:
        lr = lr / (1 + h.decay * iterations)
    s.lr = lr
    if h.kind == O_ADAM:
        s.lr = lr * sqrt(1 - pow(h.beta_2, t)) / (1 - pow(h.beta_1, t))
    elif h.kind == O_ADAMAX:
        s.lr = lr / (1 - pow(h.beta_1, t))
    elif h.kind == O_NADAM:
        s.mu_t = h.beta_1 * (1 - 0.5 * pow(0.96, t * h.schedule_decay))
        s.mu_t1 = h.beta_1 * (1 - 0.5 * pow(0.96, (t + 1) * h.schedule_decay))
        ms_new = m_schedule[0] * s.mu_t
        s.g_div = 1 - ms_new
        s.m_div = 1 - ms_new * s.mu_t1
        s.v_div = 1 - pow(h.beta_2, t)
        m_schedule[0] = ms_new


# The element-wise rules (`update`), shared with `_optim_avx2` which compiles them for AVX2 + FMA CPUs.
include "_optim_rules.pxi"
