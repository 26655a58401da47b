# cython: cdivision=True
"""GIL-free kernels of one batch: gather, forward through the ops, score, backward, optimizer step.

A training batch runs in two phases, each split over the threads (`Call.threads`) of the call:
1. Row blocks (`Call.blocks`): each block gathers its rows and runs forward, loss and the backward pass
   through its rows (activation derivatives, input gradients), all of which only depend on the row itself.
2. Parameter slices (`Call.slices`): each slice computes its rows of every weight gradient (x^T g over the
   whole batch) and its part of every bias gradient, then updates those parameters and their optimizer
   slots while they are still in its core's cache.
This puts both cores to work on the small GEMMs of a training step, which one BLAS call cannot use well,
without a gradient buffer per thread or a reduction. Blocks and slices fix the arithmetic; the threads only
change who does it: one thread running them one after the other gives the same bits.

The kernels work on the `State` compiled by `_loop.Network` (see `_state.pxd`) and are specialised for float
or double by the pointer type of an argument (`tag` where no other argument carries it).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy
from libc.stdint cimport int64_t, uint64_t

from fastfit._ext._activations cimport forward_rows, backward_rows, A_LINEAR
from fastfit._ext._dense cimport dense_forward, dense_backward_rows, dense_param_grads
from fastfit._ext._losses cimport loss_rows, metric_sum
from fastfit._ext._optim cimport prepare_step, update, update_float, update_double
from fastfit._ext._rng cimport dropout_base, uniform
from fastfit._ext._state cimport Op, State, Call, K_DENSE, K_ACT, K_DROPOUT, MIN_BLOCK_ROWS, now

# Blocks that took this much longer together than the slowest one alone did not run side by side.
cdef double STALL_FACTOR = 1.5
cdef double STALL_SLACK = 20e-6
cdef int MAX_STALLS = 4

# The optimizer rules this CPU runs fastest: the x86-64 baseline build, or the AVX2 + FMA one (`_optim_avx2`).
cdef extern from *:
    """
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    static int fastfit_cpu_has_avx2_fma(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    #else
    static int fastfit_cpu_has_avx2_fma(void) { return 0; }
    #endif
    """
    int fastfit_cpu_has_avx2_fma()

cdef update_float _update_float = update[float]
cdef update_double _update_double = update[double]
_update_kernels = "baseline"


def update_kernels(name=None):
    """Return (and with `name`, choose) the build of the optimizer rules in use: 'baseline' or 'avx2'.

    The default is 'avx2' where the CPU has AVX2 and FMA and the module was built, else 'baseline'.

    Raises:
        ValueError: unknown `name`, or 'avx2' on a CPU without AVX2 and FMA (or a build without it).
    """
    global _update_float, _update_double, _update_kernels
    if name is None:
        return _update_kernels
    if name == "baseline":
        _update_float, _update_double = update[float], update[double]
    elif name == "avx2":
        if not fastfit_cpu_has_avx2_fma():
            raise ValueError("update_kernels: 'avx2' needs a CPU with AVX2 and FMA; this one lacks them")
        try:
            from fastfit._ext import _optim_avx2
        except ImportError:
            raise ValueError("update_kernels: 'avx2' was not built on this platform") from None
        f32, f64 = _optim_avx2.addresses()
        _update_float, _update_double = <update_float><size_t>f32, <update_double><size_t>f64
    else:
        raise ValueError(f"update_kernels: expected 'baseline' or 'avx2', got {name!r}")
    _update_kernels = name
    return name


try:
    update_kernels("avx2")
except ValueError:
    pass


cdef int blocks_of(Call* c, Py_ssize_t size) noexcept nogil:
    """Number of row blocks for a batch of `size` rows."""
    return c.blocks if size >= c.blocks * MIN_BLOCK_ROWS else 1


cdef void run_batch(State* s, Call* c, floating* tag, int mode, Py_ssize_t start, Py_ssize_t size,
                    floating* out) noexcept nogil:
    """Run rows start..start+size of the call: mode 0 trains, 1 scores, 2 predicts into `out`.

    Leaves the batch loss and metric means in stats[0 : 1 + n_metrics] (modes 0 and 1).
    """
    cdef int t, m, nb = blocks_of(c, size)
    cdef int width = 1 + s.n_metrics
    cdef double scale = 0, t0, total
    cdef floating* x
    cdef Py_ssize_t first
    if mode == 0 and _gather_needed(c, start, size):
        x = <floating*>s.xbuf
    else:
        first = c.order[start] if mode == 0 else start
        x = <floating*>c.x + first * s.n_in
    if mode != 2:
        scale = _loss_scale(c, tag, mode, start, size)
    if nb > 1 and c.threads > 1:
        t0 = now()
        for t in prange(nb, num_threads=nb, schedule="static", chunksize=1):
            _block(s, c, x, mode, start, size, t, nb, scale, out)
        _note_overlap(s, c, nb, now() - t0)
    else:
        for t in range(nb):
            _block(s, c, x, mode, start, size, t, nb, scale, out)
    if mode == 2:
        return
    for m in range(width):
        total = 0
        for t in range(nb):
            total += s.bstats[t * width + m]
        s.stats[m] = total if m == 0 else total / size
    if mode != 0:
        return
    prepare_step(&s.hyper, s.iterations, &s.m_schedule, &s.step)
    if c.slices > 1 and c.threads > 1:
        for t in prange(c.slices, num_threads=c.slices, schedule="static", chunksize=1):
            _slice(s, x, size, t, c.slices)
    else:
        for t in range(c.slices):
            _slice(s, x, size, t, c.slices)
    s.iterations += 1


cdef bint _gather_needed(Call* c, Py_ssize_t start, Py_ssize_t size) noexcept nogil:
    """False when the batch's rows order[start : start + size] are consecutive rows of x (no copy needed)."""
    cdef Py_ssize_t r, first = c.order[start]
    for r in range(size):
        if c.order[start + r] != first + r:
            return True
    return False


cdef double _loss_scale(Call* c, floating* tag, int mode, Py_ssize_t start, Py_ssize_t size) noexcept nogil:
    """The factor of the batch mean: 1 / size, or 1 / count(w != 0) with sample weights (0 if none is)."""
    cdef Py_ssize_t r, row, count = 0
    if c.w == NULL:
        return 1.0 / size
    for r in range(size):
        row = c.order[start + r] if mode == 0 else start + r
        if (<floating*>c.w)[row] != 0:
            count += 1
    return 1.0 / count if count > 0 else 0.0


cdef void _note_overlap(State* s, Call* c, int nb, double elapsed) noexcept nogil:
    """Fall back to one thread for the rest of the call when the blocks keep waiting for a core."""
    cdef int t
    cdef double longest = 0
    for t in range(nb):
        if s.btime[t] > longest:
            longest = s.btime[t]
    if elapsed > STALL_FACTOR * longest + STALL_SLACK:
        c.stalls += 1
        if c.stalls >= MAX_STALLS:
            c.threads = 1
    else:
        c.stalls = 0


cdef void _block(State* s, Call* c, floating* x, int mode, Py_ssize_t start, Py_ssize_t size, int t, int nb,
                 double scale, floating* out) noexcept nogil:
    """Row block t of nb of the batch whose inputs are (or are gathered into) `x`: forward, then the output
    (predict) or loss, metrics and backward through the rows (train)."""
    cdef double t0 = now()
    cdef Py_ssize_t r0 = size * t // nb, rows = size * (t + 1) // nb - r0, first
    cdef int m
    cdef double* stats = s.bstats + t * (1 + s.n_metrics)
    cdef floating* xb = x + r0 * s.n_in
    cdef floating* yb
    cdef floating* wb
    cdef floating* res
    cdef int64_t* lb
    if x == <floating*>s.xbuf:
        _gather(s, c, xb, start + r0, rows, r0)
        yb = <floating*>s.ybuf + r0 * s.units
        lb = s.lbuf + r0
        wb = <floating*>s.wbuf + r0
    else:
        first = (c.order[start] if mode == 0 else start) + r0
        yb = <floating*>c.y + first * s.units if c.y != NULL else NULL
        lb = c.labels + first if c.labels != NULL else NULL
        wb = <floating*>c.w + first if c.w != NULL else NULL
    if c.y == NULL:
        yb = NULL
    if c.labels == NULL:
        lb = NULL
    if c.w == NULL:
        wb = NULL
    res = _forward(s, xb, rows, r0, mode == 0)
    if mode == 2:
        memcpy(out + (start + r0) * s.units, res, rows * s.units * sizeof(floating))
    else:
        stats[0] = loss_rows(s.loss, s.fused, res, yb, lb, wb, rows, s.units, scale,
                             <floating*>s.grad[s.n_ops] + r0 * s.units if mode == 0 else <floating*>NULL)
        for m in range(s.n_metrics):
            stats[1 + m] = metric_sum(s.metrics[m], res, yb, lb, rows, s.units)
        if mode == 0:
            _backward_rows(s, xb, rows, r0)
    s.btime[t] = now() - t0


cdef void _gather(State* s, Call* c, floating* xb, Py_ssize_t pos, Py_ssize_t rows, Py_ssize_t r0) noexcept nogil:
    """Copy the rows order[pos : pos + rows] into the batch buffers, from row r0 on (`xb`: x row r0)."""
    cdef Py_ssize_t r, row
    cdef Py_ssize_t nx = s.n_in * sizeof(floating), ny = s.units * sizeof(floating)
    for r in range(rows):
        row = c.order[pos + r]
        memcpy(<char*>xb + r * nx, c.x + row * nx, nx)
        if c.labels != NULL:
            s.lbuf[r0 + r] = c.labels[row]
        else:
            memcpy(s.ybuf + (r0 + r) * ny, c.y + row * ny, ny)
        if c.w != NULL:
            (<floating*>s.wbuf)[r0 + r] = (<floating*>c.w)[row]


cdef floating* _forward(State* s, floating* x, Py_ssize_t rows, Py_ssize_t r0, bint training) noexcept nogil:
    """Run the ops on the `rows` rows at `x` (batch rows r0 on); return the output (dropout only if training)."""
    cdef int i
    cdef Py_ssize_t e, n, e0
    cdef Op* op
    cdef floating* cur = x
    cdef floating* out
    cdef floating* mask
    cdef floating scale
    cdef uint64_t base
    for i in range(s.n_ops):
        op = &s.ops[i]
        out = <floating*>s.act[i + 1] + r0 * op.n_out
        if op.kind == K_DENSE:
            dense_forward(cur, <floating*>op.w, <floating*>op.b, op.act, rows, op.n_in, op.n_out, out)
        elif op.kind == K_ACT:
            memcpy(out, cur, rows * op.n_out * sizeof(floating))
            forward_rows(op.act, out, <floating*>NULL, rows, op.n_out)
        elif training:
            # The draw of an element depends on its index in the whole batch, not in the block.
            n = rows * op.n_out
            e0 = r0 * op.n_out
            mask = <floating*>op.mask + e0
            scale = <floating>(1.0 / (1.0 - op.rate))
            base = dropout_base(op.seed, <uint64_t>s.iterations)
            for e in range(n):
                mask[e] = scale if uniform(base, <uint64_t>(e0 + e)) >= op.rate else 0
                out[e] = cur[e] * mask[e]
        else:
            continue
        cur = out
    return cur


cdef void _backward_rows(State* s, floating* x, Py_ssize_t rows, Py_ssize_t r0) noexcept nogil:
    """Back-propagate the block's rows of grad[n_ops] (from the loss) down to the first op with parameters.

    Leaves in grad[i + 1] the gradient of each Dense op's pre-activation, from which `_slice` computes the
    parameter gradients.
    """
    cdef int i
    cdef Py_ssize_t e, n
    cdef Op* op
    cdef floating* g
    cdef floating* mask
    cdef bint last
    for i in range(s.n_ops - 1, s.first_param - 1, -1):
        op = &s.ops[i]
        g = <floating*>s.grad[i + 1] + r0 * op.n_out
        last = i == s.n_ops - 1
        if op.kind == K_DENSE:
            dense_backward_rows(<floating*>op.w, A_LINEAR if (last and s.fused) else op.act,
                                <floating*>s.act[i + 1] + r0 * op.n_out, g, rows, op.n_in, op.n_out,
                                <floating*>s.grad[i] + r0 * op.n_in if i > s.first_param else <floating*>NULL)
        elif op.kind == K_ACT:
            if not (last and s.fused):
                backward_rows(op.act, <floating*>s.act[i + 1] + r0 * op.n_out, g, rows, op.n_out)
        else:
            n = rows * op.n_out
            mask = <floating*>op.mask + r0 * op.n_out
            for e in range(n):
                g[e] = g[e] * mask[e]


cdef inline floating* _at(char* p, Py_ssize_t e, floating* tag) noexcept nogil:
    return <floating*>p + e if p != NULL else NULL


cdef void _update(State* s, int j, Py_ssize_t lo, Py_ssize_t hi, floating* tag) noexcept nogil:
    """Optimizer step on elements lo..hi of parameter array j (the step scalars are in s.step)."""
    if hi <= lo:
        return
    if floating is float:
        _update_float(&s.hyper, &s.step, hi - lo, <float*>s.params[j] + lo, <float*>s.pgrads[j] + lo,
                      _at(s.slots[3 * j], lo, tag), _at(s.slots[3 * j + 1], lo, tag),
                      _at(s.slots[3 * j + 2], lo, tag))
    else:
        _update_double(&s.hyper, &s.step, hi - lo, <double*>s.params[j] + lo, <double*>s.pgrads[j] + lo,
                       _at(s.slots[3 * j], lo, tag), _at(s.slots[3 * j + 1], lo, tag),
                       _at(s.slots[3 * j + 2], lo, tag))


cdef void _slice(State* s, floating* x, Py_ssize_t rows, int t, int nt) noexcept nogil:
    """Parameter slice t of nt: its rows of every weight gradient and part of every bias gradient, then the
    optimizer step on those parameters (`x`: the batch inputs)."""
    cdef int i
    cdef Op* op
    cdef Py_ssize_t lo, hi, c0, c1
    for i in range(s.first_param, s.n_ops):
        op = &s.ops[i]
        if op.kind != K_DENSE:
            continue
        lo, hi = op.n_in * t // nt, op.n_in * (t + 1) // nt
        c0, c1 = op.n_out * t // nt, op.n_out * (t + 1) // nt
        dense_param_grads(x if i == 0 else <floating*>s.act[i], <floating*>s.grad[i + 1], rows, op.n_in,
                          op.n_out, lo, hi, c0, c1, <floating*>op.gw, <floating*>op.gb)
        _update(s, op.pw, lo * op.n_out, hi * op.n_out, x)
        if op.pb >= 0:
            _update(s, op.pb, c0, c1, x)


cdef void accumulate(State* s, Py_ssize_t size) noexcept nogil:
    """Add this batch's size-weighted values to the running sums in stats."""
    cdef int m, k = 1 + s.n_metrics
    s.stats[k] += size
    for m in range(k):
        s.stats[k + 1 + m] += s.stats[m] * size
