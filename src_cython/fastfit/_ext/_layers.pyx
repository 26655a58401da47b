# cython: cdivision=True
"""Kernels of the ops beyond Dense, activation and dropout, over row-major (rows x n) batch matrices.

Each is the twin of `fastfit._reference.layers` and computes the same formulas in the same order:
statistics and penalties are accumulated in double, element values are computed in the data's precision.
Batch normalization's training passes work on a slice c0..c1 of the features over all rows of the batch
(one slice per thread); the others on any run of rows.
"""
from cython cimport floating
from libc.math cimport sqrt, log1p, cos, fabs, M_PI
from libc.stdint cimport uint64_t

from fastfit._ext._activations cimport forward_rows, A_LINEAR, f_expm1
from fastfit._ext._rng cimport uniform

cdef double SELU_ALPHA = 1.6732632423543772848170429916717
cdef double SELU_SCALE = 1.0507009873554804934193349852946


cdef void bn_train_forward(const floating* x, floating* out, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t c0,
                           Py_ssize_t c1, double* mean, double* inv, const floating* gamma, const floating* beta,
                           floating* moving_mean, floating* moving_var, double momentum, double eps,
                           bint update, int act) noexcept nogil:
    """Features c0..c1: batch mean and 1/sqrt(var + eps) (biased var) into mean/inv, out = act(gamma * xhat +
    beta); with `update`, the moving statistics move towards the batch mean and unbiased variance."""
    cdef Py_ssize_t r, j
    cdef const floating* xr
    cdef floating* yr
    cdef floating xh, m, s
    cdef double d
    if c1 <= c0:
        return
    for j in range(c0, c1):
        mean[j] = 0
        inv[j] = 0
    for r in range(rows):
        xr = x + r * n
        for j in range(c0, c1):
            mean[j] += xr[j]
    for j in range(c0, c1):
        mean[j] = mean[j] / rows
    for r in range(rows):
        xr = x + r * n
        for j in range(c0, c1):
            d = xr[j] - mean[j]
            inv[j] += d * d
    for j in range(c0, c1):
        d = inv[j] / rows       # the batch variance
        if update:
            moving_mean[j] = <floating>(moving_mean[j] - (moving_mean[j] - mean[j]) * (1.0 - momentum))
            moving_var[j] = <floating>(moving_var[j]
                                       - (moving_var[j] - d * (rows / (rows - (1.0 + eps)))) * (1.0 - momentum))
        inv[j] = 1.0 / sqrt(d + eps)
    for r in range(rows):
        xr = x + r * n
        yr = out + r * n
        for j in range(c0, c1):
            xh = (xr[j] - <floating>mean[j]) * <floating>inv[j]
            if gamma != NULL:
                xh = xh * gamma[j]
            if beta != NULL:
                xh = xh + beta[j]
            yr[j] = xh
        if act != A_LINEAR:
            forward_rows(act, yr + c0, <floating*>NULL, 1, c1 - c0)


cdef void bn_infer_forward(const floating* x, floating* out, Py_ssize_t rows, Py_ssize_t n,
                           const floating* gamma, const floating* beta, const floating* moving_mean,
                           const floating* moving_var, double eps, int act) noexcept nogil:
    """out = act(gamma * (x - moving_mean) / sqrt(moving_var + eps) + beta) on `rows` rows."""
    cdef Py_ssize_t r, j
    cdef floating xh
    for r in range(rows):
        for j in range(n):
            xh = (x[r * n + j] - moving_mean[j]) * <floating>(1.0 / sqrt(<double>moving_var[j] + eps))
            if gamma != NULL:
                xh = xh * gamma[j]
            if beta != NULL:
                xh = xh + beta[j]
            out[r * n + j] = xh
    if act != A_LINEAR:
        forward_rows(act, out, <floating*>NULL, rows, n)


cdef void bn_backward(const floating* x, const floating* g, floating* gx, Py_ssize_t rows, Py_ssize_t n,
                      Py_ssize_t c0, Py_ssize_t c1, const double* mean, const double* inv, double* sums,
                      const floating* gamma, floating* ggamma, floating* gbeta) noexcept nogil:
    """Features c0..c1 of the training backward pass: from g = d loss / d (gamma * xhat + beta), the sums
    dbeta = sum g and dgamma = sum g * xhat (into sums[j], sums[n + j]; copied to gbeta/ggamma unless NULL) and,
    unless gx is NULL, gx = gamma * inv / N * (N * g - dbeta - xhat * dgamma)."""
    cdef Py_ssize_t r, j
    cdef const floating* xr
    cdef const floating* gr
    cdef floating* gxr
    cdef floating xh, v
    cdef double* dbeta = sums
    cdef double* dgamma = sums + n
    for j in range(c0, c1):
        dbeta[j] = 0
        dgamma[j] = 0
    for r in range(rows):
        xr = x + r * n
        gr = g + r * n
        for j in range(c0, c1):
            xh = (xr[j] - <floating>mean[j]) * <floating>inv[j]
            dbeta[j] += gr[j]
            dgamma[j] += gr[j] * xh
    for j in range(c0, c1):
        if gbeta != NULL:
            gbeta[j] = <floating>dbeta[j]
        if ggamma != NULL:
            ggamma[j] = <floating>dgamma[j]
    if gx == NULL:
        return
    for r in range(rows):
        xr = x + r * n
        gr = g + r * n
        gxr = gx + r * n
        for j in range(c0, c1):
            xh = (xr[j] - <floating>mean[j]) * <floating>inv[j]
            v = gr[j] * <floating>rows
            v = v - <floating>dbeta[j]
            v = v - xh * <floating>dgamma[j]
            gxr[j] = v * <floating>((1.0 if gamma == NULL else <double>gamma[j]) * inv[j] / rows)


cdef void relu_forward(const floating* x, floating* out, Py_ssize_t count, double slope, double max_value,
                       bint has_max, double threshold) noexcept nogil:
    """Keras 2.2's K.relu: x for x > threshold (else 0), clipped to [0, max_value], minus
    slope * max(threshold - x, 0)."""
    cdef Py_ssize_t e
    cdef floating v, p, th = <floating>threshold, mx = <floating>max_value, a = <floating>slope
    for e in range(count):
        v = x[e]
        p = v if v > th else 0
        if has_max:
            p = 0 if p < 0 else (mx if p > mx else p)
        out[e] = p - a * (th - v if th - v > 0 else 0)


cdef void relu_backward(const floating* x, floating* g, Py_ssize_t count, double slope, double max_value,
                        bint has_max, double threshold) noexcept nogil:
    """g *= 1 where threshold < x (and 0 < x < max_value with a maximum), + slope where x < threshold."""
    cdef Py_ssize_t e
    cdef floating v, d, th = <floating>threshold, mx = <floating>max_value, a = <floating>slope
    for e in range(count):
        v = x[e]
        d = 1 if v > th else 0
        if has_max and not (v > 0 and v < mx):
            d = 0
        if v < th:
            d = d + a
        g[e] = g[e] * d


cdef void elu_forward(const floating* x, floating* out, Py_ssize_t count, double alpha) noexcept nogil:
    cdef Py_ssize_t e
    cdef floating v
    for e in range(count):
        v = x[e]
        out[e] = v if v > 0 else f_expm1(v) * <floating>alpha


cdef void elu_backward(const floating* x, const floating* y, floating* g, Py_ssize_t count,
                       double alpha) noexcept nogil:
    cdef Py_ssize_t e
    for e in range(count):
        g[e] = g[e] * (1 if x[e] > 0 else y[e] + <floating>alpha)


cdef void prelu_forward(const floating* x, floating* out, Py_ssize_t rows, Py_ssize_t n, const floating* alpha,
                        bint shared) noexcept nogil:
    cdef Py_ssize_t r, j
    cdef floating v
    for r in range(rows):
        for j in range(n):
            v = x[r * n + j]
            out[r * n + j] = v * (1 if v > 0 else alpha[0 if shared else j])


cdef void prelu_input_grad(const floating* x, const floating* g, floating* gx, Py_ssize_t rows, Py_ssize_t n,
                           const floating* alpha, bint shared) noexcept nogil:
    cdef Py_ssize_t r, j
    for r in range(rows):
        for j in range(n):
            gx[r * n + j] = g[r * n + j] * (1 if x[r * n + j] > 0 else alpha[0 if shared else j])


cdef void prelu_alpha_grad(const floating* x, const floating* g, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t c0,
                           Py_ssize_t c1, bint shared, floating* galpha) noexcept nogil:
    """galpha[c0:c1] = sum over rows of g * min(x, 0) (shared: galpha[0] = the sum over all of it)."""
    cdef Py_ssize_t r, j
    cdef double total
    cdef floating v
    if shared:
        if c1 > c0:
            total = 0
            for j in range(n):
                for r in range(rows):
                    v = x[r * n + j]
                    total += g[r * n + j] * (v if v < 0 else 0)
            galpha[0] = <floating>total
        return
    for j in range(c0, c1):
        total = 0
        for r in range(rows):
            v = x[r * n + j]
            total += g[r * n + j] * (v if v < 0 else 0)
        galpha[j] = <floating>total


cdef inline double _normal(uint64_t base, uint64_t e) noexcept nogil:
    """Standard normal draw of element e: Box-Muller on the uniforms of counters 2e and 2e + 1."""
    return sqrt(-2.0 * log1p(-uniform(base, 2 * e))) * cos(2.0 * M_PI * uniform(base, 2 * e + 1))


cdef void noise_forward(int kind, const floating* x, floating* out, floating* mask, Py_ssize_t count,
                        Py_ssize_t e0, double value, uint64_t base) noexcept nogil:
    """Training forward of a noise op on `count` elements that are elements e0.. of the batch matrix (the draws
    depend on the index in the whole batch): `mask` receives what the backward pass multiplies by."""
    cdef Py_ssize_t e
    cdef double a, b, alpha_p
    cdef floating fb, fdrop, fa
    if kind == N_GAUSSIAN_NOISE:
        for e in range(count):
            out[e] = x[e] + <floating>(value * _normal(base, <uint64_t>(e0 + e)))
    elif kind == N_GAUSSIAN_DROPOUT:
        a = sqrt(value / (1.0 - value))
        for e in range(count):
            mask[e] = <floating>(1.0 + a * _normal(base, <uint64_t>(e0 + e)))
            out[e] = x[e] * mask[e]
    else:
        alpha_p = -SELU_ALPHA * SELU_SCALE
        a = ((1 - value) * (1 + value * alpha_p * alpha_p)) ** -0.5
        b = -a * alpha_p * value
        fa, fb, fdrop = <floating>a, <floating>b, <floating>(a * alpha_p + b)
        for e in range(count):
            if uniform(base, <uint64_t>(e0 + e)) >= value:
                mask[e] = fa
                out[e] = x[e] * fa + fb
            else:
                mask[e] = 0
                out[e] = x[e] * 0 + fdrop


cdef double activity_penalty(const floating* y, Py_ssize_t count, double l1, double l2) noexcept nogil:
    """l1 * sum|y| + l2 * sum y**2 (double sums)."""
    cdef Py_ssize_t e
    cdef double s1 = 0, s2 = 0, v
    for e in range(count):
        v = y[e]
        s1 += fabs(v)
        s2 += v * v
    return l1 * s1 + l2 * s2


cdef inline floating _sign(floating v) noexcept nogil:
    return 1 if v > 0 else (-1 if v < 0 else 0)


cdef void activity_backward(const floating* y, floating* g, Py_ssize_t count, double l1, double l2) noexcept nogil:
    """g += l1 * sign(y) + 2 * l2 * y."""
    cdef Py_ssize_t e
    cdef floating a = <floating>l1, b = <floating>(2 * l2)
    for e in range(count):
        g[e] = g[e] + (a * _sign(y[e]) + b * y[e])


cdef double weight_penalty(const floating* w, floating* g, Py_ssize_t count, double l1, double l2) noexcept nogil:
    """Return l1 * sum|w| + l2 * sum w**2; unless g is NULL, g += l1 * sign(w) + 2 * l2 * w.

    The l2-only penalty (the common `l2(...)`) takes one pass over w and g: g += 2 * l2 * w is then the same
    number as the general form (whose l1 term is +-0), and four partial sums keep the double sum pipelined.
    """
    cdef Py_ssize_t e, k
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0, v
    cdef floating b = <floating>(2 * l2)
    if l1 != 0 or g == NULL:
        if g != NULL:
            activity_backward(w, g, count, l1, l2)
        return activity_penalty(w, count, l1, l2)
    k = count - count % 4
    for e in range(0, k, 4):
        g[e] = g[e] + b * w[e]
        g[e + 1] = g[e + 1] + b * w[e + 1]
        g[e + 2] = g[e + 2] + b * w[e + 2]
        g[e + 3] = g[e + 3] + b * w[e + 3]
        s0 += <double>w[e] * w[e]
        s1 += <double>w[e + 1] * w[e + 1]
        s2 += <double>w[e + 2] * w[e + 2]
        s3 += <double>w[e + 3] * w[e + 3]
    for e in range(k, count):
        g[e] = g[e] + b * w[e]
        v = w[e]
        s0 += v * v
    return l2 * ((s0 + s1) + (s2 + s3))


cdef void constrain(int kind, floating* w, Py_ssize_t rows, Py_ssize_t cols, int axis, double max_value,
                    double min_value, double rate) noexcept nogil:
    """Apply a constraint to w (rows x cols) in place; norms over rows (axis 0: one per column) or over columns
    (axis 1: one per row), in double, with the fuzz factor 1e-7 of Keras."""
    cdef Py_ssize_t r, j, k, outer, inner, so, si
    cdef double norm, desired, f
    if kind == C_NON_NEG:
        for k in range(rows * cols):
            w[k] = w[k] * (1 if w[k] >= 0 else 0)
        return
    # outer: the slices with one norm each; inner: the elements of one slice; so/si: their strides.
    if axis == 0:
        outer, inner, so, si = cols, rows, 1, cols
    else:
        outer, inner, so, si = rows, cols, cols, 1
    for j in range(outer):
        norm = 0
        for r in range(inner):
            norm += <double>w[j * so + r * si] * w[j * so + r * si]
        norm = sqrt(norm)
        if kind == C_MAX_NORM:
            desired = norm if norm < max_value else max_value
        elif kind == C_UNIT_NORM:
            desired = 1
        else:
            desired = norm if norm > min_value else min_value
            desired = desired if desired < max_value else max_value
            desired = rate * desired + (1 - rate) * norm
        f = desired / (1e-7 + norm)
        for r in range(inner):
            w[j * so + r * si] = w[j * so + r * si] * <floating>f
