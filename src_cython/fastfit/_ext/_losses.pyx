# cython: cdivision=True
"""Losses and metrics of a batch, with the gradient of the batch loss (Keras 2.2 definitions).

Row r of the network output `p` (rows x units) is scored against row r of `y` (same shape) or, for the sparse
losses and metrics, against the integer label `labels[r]`. Sums run in double precision.

Batch loss: l_r is the per-sample loss; without weights loss = mean_r l_r; with weights
loss = sum_r w_r l_r / count(w_r != 0) (0 when no weight is non-zero). The gradient written to `grad` is
d loss / d p, or d loss / d z for the fused pairs (softmax + categorical crossentropy, sigmoid + binary
crossentropy), where z is the pre-activation.

The from-logits crossentropies (L_CCE_LOGITS, L_SCCE_LOGITS, L_BCE_LOGITS) read the logits z as `p`: the loss
is computed in log-sum-exp form without clipping, and the gradient is softmax(z) * sum(y) - y, or
(sigmoid(z) - y) / units.
"""
from cython cimport floating
from libc.math cimport log, fabs, sqrt, exp, log1p, tanh, rint, isnan, INFINITY
from libc.stdint cimport int64_t

cdef double EPS = 1e-7


cdef inline double clip(double v, double lo, double hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


cdef inline double sign(double v) noexcept nogil:
    return 1.0 if v > 0 else (-1.0 if v < 0 else 0.0)


cdef inline bint inside(double v, double lo, double hi) noexcept nogil:
    """Whether clip(v, lo, hi) passes the gradient of v."""
    return lo <= v <= hi


cdef double _row(int code, bint fused, const floating* p, const floating* y, Py_ssize_t label,
                 Py_ssize_t u, floating* g, double c) noexcept nogil:
    """Per-sample loss of one row; if `g` is not NULL, write c * d loss / d p (or d z when fused) into it."""
    cdef Py_ssize_t j, jmax
    cdef double l = 0, d, q, s, t, pc, yc, ny, np_, inv = 1.0 / u
    if code == L_MSE:
        for j in range(u):
            d = <double>p[j] - y[j]
            l += d * d
            if g != NULL:
                g[j] = <floating>(c * 2 * d * inv)
        return l * inv
    if code == L_MAE:
        for j in range(u):
            d = <double>p[j] - y[j]
            l += fabs(d)
            if g != NULL:
                g[j] = <floating>(c * sign(d) * inv)
        return l * inv
    if code == L_MAPE:
        for j in range(u):
            d = <double>p[j] - y[j]
            s = clip(fabs(y[j]), EPS, INFINITY)
            l += fabs(d) / s
            if g != NULL:
                g[j] = <floating>(c * 100 * sign(d) / s * inv)
        return 100 * l * inv
    if code == L_MSLE:
        for j in range(u):
            pc = clip(p[j], EPS, INFINITY)
            d = log(pc + 1) - log(clip(y[j], EPS, INFINITY) + 1)
            l += d * d
            if g != NULL:
                g[j] = <floating>(c * 2 * d / (pc + 1) * inv if p[j] >= EPS else 0)
        return l * inv
    if code == L_SQUARED_HINGE or code == L_HINGE:
        for j in range(u):
            d = 1 - <double>y[j] * p[j]
            d = d if d > 0 else 0
            if code == L_HINGE:
                l += d
                if g != NULL:
                    g[j] = <floating>(-c * y[j] * inv if d > 0 else 0)
            else:
                l += d * d
                if g != NULL:
                    g[j] = <floating>(-c * 2 * d * y[j] * inv)
        return l * inv
    if code == L_CATEGORICAL_HINGE:
        s = 0
        jmax = 0
        t = -INFINITY
        for j in range(u):
            s += <double>y[j] * p[j]
            q = (1 - <double>y[j]) * p[j]
            if q > t:
                t = q
                jmax = j
        l = t - s + 1
        l = l if l > 0 else 0
        if g != NULL:
            for j in range(u):
                g[j] = <floating>(c * (-y[j] + (1 - y[j] if j == jmax else 0)) if l > 0 else 0)
        return l
    if code == L_LOGCOSH:
        # log(cosh(x)) = x + softplus(-2x) - log(2), d/dx = tanh(x)
        for j in range(u):
            d = <double>p[j] - y[j]
            q = -2 * d
            l += d + (q + log1p(exp(-q)) if q > 0 else log1p(exp(q))) - 0.6931471805599453
            if g != NULL:
                g[j] = <floating>(c * tanh(d) * inv)
        return l * inv
    if code == L_CCE:
        if fused:
            s = 0
            for j in range(u):
                if y[j] != 0:  # one-hot targets: skip the logs that are multiplied by zero
                    l -= y[j] * log(clip(p[j], EPS, 1 - EPS))
                s += y[j]
            if g != NULL:
                for j in range(u):
                    g[j] = <floating>(c * (p[j] * s - y[j]))
            return l
        # Keras 2.2: q = p / sum(p), clipped to [eps, 1 - eps], loss = -sum(y * log(q)).
        s = 0
        for j in range(u):
            s += p[j]
        t = 0
        for j in range(u):
            q = p[j] / s
            l -= y[j] * log(clip(q, EPS, 1 - EPS))
            if g != NULL:
                d = -y[j] / q if inside(q, EPS, 1 - EPS) else 0
                t += d * q
                g[j] = <floating>d
        if g != NULL:
            for j in range(u):
                g[j] = <floating>(c * (g[j] - t) / s)
        return l
    if code == L_SCCE:
        if fused:
            l = -log(clip(p[label], EPS, 1 - EPS))
            if g != NULL:
                for j in range(u):
                    g[j] = <floating>(c * p[j])
                g[label] = <floating>(c * (<double>p[label] - 1))
            return l
        # Keras 2.2 (TensorFlow): logits = log(clip(p)), loss = softmax cross-entropy of the label.
        s = 0
        for j in range(u):
            s += clip(p[j], EPS, 1 - EPS)
        pc = clip(p[label], EPS, 1 - EPS)
        l = -log(pc / s)
        if g != NULL:
            for j in range(u):
                d = 1 / s - (1 / pc if j == label else 0)
                g[j] = <floating>(c * d if inside(p[j], EPS, 1 - EPS) else 0)
        return l
    if code == L_BCE:
        for j in range(u):
            pc = clip(p[j], EPS, 1 - EPS)
            l -= y[j] * log(pc) + (1 - <double>y[j]) * log(1 - pc)
            if g != NULL:
                if fused:
                    g[j] = <floating>(c * (<double>p[j] - y[j]) * inv)
                elif inside(p[j], EPS, 1 - EPS):
                    g[j] = <floating>(c * (pc - y[j]) / (pc * (1 - pc)) * inv)
                else:
                    g[j] = 0
        return l * inv
    if code == L_KLD:
        for j in range(u):
            yc = clip(y[j], EPS, 1)
            pc = clip(p[j], EPS, 1)
            l += yc * log(yc / pc)
            if g != NULL:
                g[j] = <floating>(-c * yc / pc if inside(p[j], EPS, 1) else 0)
        return l
    if code == L_POISSON:
        for j in range(u):
            l += p[j] - y[j] * log(p[j] + EPS)
            if g != NULL:
                g[j] = <floating>(c * (1 - y[j] / (p[j] + EPS)) * inv)
        return l * inv
    if code == L_COSINE:
        # -sum(l2_normalize(y) * l2_normalize(p)), l2_normalize(v) = v / sqrt(max(sum(v^2), 1e-12))
        ny = 0
        np_ = 0
        s = 0
        for j in range(u):
            ny += <double>y[j] * y[j]
            np_ += <double>p[j] * p[j]
            s += <double>y[j] * p[j]
        t = np_
        ny = sqrt(ny if ny > 1e-12 else 1e-12)
        np_ = sqrt(np_ if np_ > 1e-12 else 1e-12)
        l = -s / (ny * np_)
        if g != NULL:
            for j in range(u):
                d = -y[j] / (ny * np_)
                if t > 1e-12:
                    d -= l * p[j] / (np_ * np_)
                g[j] = <floating>(c * d)
        return l
    if code == L_CCE_LOGITS or code == L_SCCE_LOGITS:
        return _softmax_logits_row(code == L_SCCE_LOGITS, p, y, label, u, g, c)
    if code == L_BCE_LOGITS:
        for j in range(u):
            # max(z, 0) - z y + log(1 + exp(-|z|))
            d = <double>p[j]
            t = exp(-fabs(d))
            l += (d if d > 0 else 0) - d * (<double>y[j]) + log1p(t)
            if g != NULL:
                q = 1 / (1 + t) if d >= 0 else t / (1 + t)  # sigmoid(z)
                g[j] = <floating>(c * (q - y[j]) * inv)
        return l * inv
    return 0


cdef double _softmax_logits_row(bint sparse, const floating* z, const floating* y, Py_ssize_t label,
                                Py_ssize_t u, floating* g, double c) noexcept nogil:
    """Softmax crossentropy of the logits `z` against `y` (or the integer `label` when sparse):
    -sum_j y_j log softmax(z)_j = sum(y) * lse(z) - sum_j y_j z_j, with lse(z) = m + log(sum_j exp(z_j - m))."""
    cdef Py_ssize_t j
    cdef double m = z[0], s = 0, lse, total_y = 0, yz = 0, t
    for j in range(1, u):
        if z[j] > m:
            m = z[j]
    for j in range(u):
        s += exp(<double>z[j] - m)
    lse = m + log(s)
    if sparse:
        total_y = 1
        yz = z[label]
    else:
        for j in range(u):
            total_y += y[j]
            yz += <double>y[j] * z[j]
    if g != NULL:
        for j in range(u):
            if sparse:
                t = 1.0 if j == label else 0.0
            else:
                t = y[j]
            g[j] = <floating>(c * (exp(<double>z[j] - lse) * total_y - t))
    return total_y * lse - yz


cdef double loss_rows(int code, bint fused, const floating* p, const floating* y, const int64_t* labels,
                      const floating* w, Py_ssize_t rows, Py_ssize_t units, double scale,
                      floating* grad) noexcept nogil:
    """Return this block's share of the batch loss, sum_r scale * w_r * l_r (w_r = 1 without weights).

    `scale` is 1 / (rows of the whole batch), or 1 / (its count of non-zero weights) with weights, so the
    blocks of one batch add up to its loss; if `grad` is not NULL it is filled (rows x units) with the
    block's rows of the batch-loss gradient.
    """
    cdef Py_ssize_t r
    cdef double total = 0, c, l
    cdef Py_ssize_t label = 0
    for r in range(rows):
        c = scale if w == NULL else w[r] * scale
        if labels != NULL:
            label = labels[r]
        l = _row(code, fused, p + r * units, y + r * units if y != NULL else NULL, label, units,
                 grad + r * units if grad != NULL else NULL, c)
        if c != 0:
            total += c * l
    return total


cdef double metric_sum(int code, double param, const floating* p, const floating* y, const int64_t* labels,
                       Py_ssize_t rows, Py_ssize_t units) noexcept nogil:
    """Return the unweighted sum over the rows of a metric (or of a loss used as a metric). `param`: binary
    accuracy's threshold (NaN: compare with the rounded prediction), the top-k metrics' k."""
    cdef Py_ssize_t r, j, a, b, label = 0, above
    cdef double total = 0, hits
    cdef const floating* pr
    cdef const floating* yr
    for r in range(rows):
        pr = p + r * units
        yr = y + r * units if y != NULL else NULL
        if labels != NULL:
            label = labels[r]
        if code < M_BINARY_ACCURACY or L_CCE_LOGITS <= code <= L_BCE_LOGITS:
            total += _row(code, False, pr, yr, label, units, <floating*>NULL, 0)
        elif code == M_BINARY_ACCURACY:
            hits = 0
            for j in range(units):
                if yr[j] == (rint(pr[j]) if isnan(param) else (1.0 if pr[j] > param else 0.0)):
                    hits += 1
            total += hits / units
        elif code == M_CATEGORICAL_ACCURACY or code == M_SPARSE_CATEGORICAL_ACCURACY:
            a = 0
            for j in range(1, units):
                if pr[j] > pr[a]:
                    a = j
            if code == M_CATEGORICAL_ACCURACY:
                b = 0
                for j in range(1, units):
                    if yr[j] > yr[b]:
                        b = j
            else:
                b = label
            total += (a == b)
        else:
            # in_top_k: the target is in the top k when fewer than k scores are strictly larger.
            if code == M_TOP_K:
                b = 0
                for j in range(1, units):
                    if yr[j] > yr[b]:
                        b = j
            else:
                b = label
            above = 0
            for j in range(units):
                if pr[j] > pr[b]:
                    above += 1
            total += (above < param)
    return total


cdef inline Py_ssize_t _bucket(double v, const double* thresholds, Py_ssize_t T) noexcept nogil:
    """The number of thresholds strictly below v (0 for NaN: v > t is false for every t)."""
    cdef Py_ssize_t lo = 0, hi = T, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if thresholds[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef void threshold_histogram(const floating* p, const floating* y, Py_ssize_t rows, Py_ssize_t units,
                              const double* thresholds, Py_ssize_t T, int class_id, int top_k,
                              double* hist) noexcept nogil:
    """Add rows of (p, y) to a threshold histogram (fastfit._reference.metrics.threshold_histogram): per
    element (only column class_id if >= 0), bucket #{i : thresholds[i] < p} of the positives (y != 0) or
    the negatives; with top_k > 0 an element outside its row's k largest (ties: lower index first) is
    predicted negative at every threshold. hist[2T + 2] counts the predictions outside [0, 1] (NaN too)."""
    cdef Py_ssize_t r, j, i, lo, hi, rank
    cdef double v
    cdef const floating* pr
    cdef const floating* yr
    lo = class_id if class_id >= 0 else 0
    hi = class_id + 1 if class_id >= 0 else units
    for r in range(rows):
        pr = p + r * units
        yr = y + r * units
        for j in range(units):
            if not (pr[j] >= 0 and pr[j] <= 1):
                hist[2 * T + 2] += 1
        for j in range(lo, hi):
            v = pr[j]
            if top_k > 0:
                rank = 0
                for i in range(units):
                    if pr[i] > v or (pr[i] == v and i < j):
                        rank += 1
                if rank >= top_k:
                    v = -INFINITY
            if yr[j] != 0:
                hist[_bucket(v, thresholds, T)] += 1
            else:
                hist[T + 1 + _bucket(v, thresholds, T)] += 1
