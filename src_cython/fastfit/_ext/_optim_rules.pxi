# The optimizer update rules of Keras 2.2, one fused pass per parameter array: included by `_optim.pyx` (any
# CPU) and `_optim_avx2.pyx` (AVX2 + FMA). Needs floating, sqrt, sqrtf, Hyper, Step and the O_* codes.


cdef inline floating f_sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef void update(const Hyper* h, const Step* s, Py_ssize_t n, floating* p, const floating* g,
                 floating* s0, floating* s1, floating* s2) noexcept nogil:
    """Update `p` (n elements) in place from its gradient `g` and slots `s0`, `s1`, `s2`."""
    cdef Py_ssize_t i
    cdef floating lr = <floating>s.lr
    cdef floating eps = <floating>h.eps
    cdef floating mom = <floating>h.momentum
    cdef floating rho = <floating>h.rho, rho1 = <floating>(1 - h.rho)
    cdef floating b1 = <floating>h.beta_1, b1c = <floating>(1 - h.beta_1)
    cdef floating b2 = <floating>h.beta_2, b2c = <floating>(1 - h.beta_2)
    cdef floating mu_t = <floating>s.mu_t, mu_tc = <floating>(1 - s.mu_t), mu_t1 = <floating>s.mu_t1
    cdef floating g_div = <floating>s.g_div, m_div = <floating>s.m_div, v_div = <floating>s.v_div
    cdef floating gi, a, v, u, m
    if h.kind == O_SGD:
        if h.momentum == 0:
            for i in range(n):
                p[i] = p[i] - lr * g[i]
        elif h.nesterov:
            for i in range(n):
                v = mom * s0[i] - lr * g[i]
                s0[i] = v
                p[i] = p[i] + (mom * v - lr * g[i])
        else:
            for i in range(n):
                v = mom * s0[i] - lr * g[i]
                s0[i] = v
                p[i] = p[i] + v
    elif h.kind == O_RMSPROP:
        for i in range(n):
            gi = g[i]
            a = rho * s0[i] + rho1 * gi * gi
            s0[i] = a
            p[i] = p[i] - lr * gi / (f_sqrt(a) + eps)
    elif h.kind == O_ADAGRAD:
        for i in range(n):
            gi = g[i]
            a = s0[i] + gi * gi
            s0[i] = a
            p[i] = p[i] - lr * gi / (f_sqrt(a) + eps)
    elif h.kind == O_ADADELTA:
        for i in range(n):
            gi = g[i]
            a = rho * s0[i] + rho1 * gi * gi
            s0[i] = a
            u = gi * f_sqrt(s1[i] + eps) / f_sqrt(a + eps)
            p[i] = p[i] - lr * u
            s1[i] = rho * s1[i] + rho1 * u * u
    elif h.kind == O_ADAM:
        if h.amsgrad:
            for i in range(n):
                gi = g[i]
                m = b1 * s0[i] + b1c * gi
                v = b2 * s1[i] + b2c * gi * gi
                s0[i] = m
                s1[i] = v
                if v > s2[i]:
                    s2[i] = v
                p[i] = p[i] - lr * m / (f_sqrt(s2[i]) + eps)
        else:
            for i in range(n):
                gi = g[i]
                m = b1 * s0[i] + b1c * gi
                v = b2 * s1[i] + b2c * gi * gi
                s0[i] = m
                s1[i] = v
                p[i] = p[i] - lr * m / (f_sqrt(v) + eps)
    elif h.kind == O_ADAMAX:
        for i in range(n):
            gi = g[i]
            m = b1 * s0[i] + b1c * gi
            s0[i] = m
            u = b2 * s1[i]
            a = gi if gi >= 0 else -gi
            u = u if u > a else a
            s1[i] = u
            p[i] = p[i] - lr * m / (u + eps)
    elif h.kind == O_NADAM:
        for i in range(n):
            gi = g[i]
            m = b1 * s0[i] + b1c * gi
            v = b2 * s1[i] + b2c * gi * gi
            s0[i] = m
            s1[i] = v
            m = mu_tc * (gi / g_div) + mu_t1 * (m / m_div)
            p[i] = p[i] - lr * m / (f_sqrt(v / v_div) + eps)
