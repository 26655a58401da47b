# cython: cdivision=True
"""GIL-free kernels of one batch: gather, forward through the ops, score, backward, optimizer step.

They work on the `State` compiled by `_loop.Network` (see `_state.pxd`) and are specialised for float or
double by the pointer type of an argument (`tag` where no other argument carries it).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy
from libc.stdint cimport int64_t, uint64_t

from fastfit._ext._activations cimport forward_rows, backward_rows, A_LINEAR
from fastfit._ext._dense cimport dense_forward, dense_backward
from fastfit._ext._losses cimport batch_loss, batch_metric
from fastfit._ext._optim cimport prepare_step, update
from fastfit._ext._rng cimport dropout_base, uniform
from fastfit._ext._state cimport Op, State, Call, K_DENSE, K_ACT, K_DROPOUT, now

cdef Py_ssize_t PARALLEL_GATHER_BYTES = 1 << 18
cdef double SLOW_GATHER_SECONDS_PER_BYTE = 1.0 / 2e9   # slower than 2 GB/s: the helper thread is starved


cdef floating* forward(State* s, floating* x, Py_ssize_t rows, bint training) noexcept nogil:
    """Run the ops on `rows` rows starting at `x`; return the output (dropout is the identity unless training)."""
    cdef int i
    cdef Py_ssize_t e, n
    cdef Op* op
    cdef floating* cur = x
    cdef floating* out
    cdef floating* mask
    cdef floating scale
    cdef uint64_t base
    for i in range(s.n_ops):
        op = &s.ops[i]
        out = <floating*>s.act[i + 1]
        if op.kind == K_DENSE:
            dense_forward(cur, <floating*>op.w, <floating*>op.b, op.act, rows, op.n_in, op.n_out, out)
        elif op.kind == K_ACT:
            memcpy(out, cur, rows * op.n_out * sizeof(floating))
            forward_rows(op.act, out, <floating*>NULL, rows, op.n_out)
        elif training:
            n = rows * op.n_out
            mask = <floating*>op.mask
            scale = <floating>(1.0 / (1.0 - op.rate))
            base = dropout_base(op.seed, <uint64_t>s.iterations)
            for e in range(n):
                mask[e] = scale if uniform(base, <uint64_t>e) >= op.rate else 0
                out[e] = cur[e] * mask[e]
        else:
            continue
        cur = out
    return cur


cdef void backward(State* s, floating* x, Py_ssize_t rows) noexcept nogil:
    """Back-propagate grad[n_ops] (from the loss) down to the first op with parameters."""
    cdef int i
    cdef Py_ssize_t e, n
    cdef Op* op
    cdef floating* g
    cdef floating* mask
    cdef bint last
    for i in range(s.n_ops - 1, s.first_param - 1, -1):
        op = &s.ops[i]
        g = <floating*>s.grad[i + 1]
        last = i == s.n_ops - 1
        if op.kind == K_DENSE:
            dense_backward(x if i == 0 else <floating*>s.act[i], <floating*>op.w,
                           A_LINEAR if (last and s.fused) else op.act, <floating*>s.act[i + 1], g,
                           rows, op.n_in, op.n_out, <floating*>op.gw, <floating*>op.gb,
                           <floating*>s.grad[i] if i > s.first_param else NULL)
        elif op.kind == K_ACT:
            if not (last and s.fused):
                backward_rows(op.act, <floating*>s.act[i + 1], g, rows, op.n_out)
        else:
            n = rows * op.n_out
            mask = <floating*>op.mask
            for e in range(n):
                g[e] = g[e] * mask[e]


cdef void score(State* s, floating* out, floating* y, int64_t* labels, floating* w, Py_ssize_t rows,
          bint training) noexcept nogil:
    """Write the batch loss and metrics into stats[0 : 1 + n_metrics] (and the loss gradient if training)."""
    cdef int m
    s.stats[0] = batch_loss(s.loss, s.fused, out, y, labels, w, rows, s.units,
                            <floating*>s.grad[s.n_ops] if training else NULL)
    for m in range(s.n_metrics):
        s.stats[1 + m] = batch_metric(s.metrics[m], out, y, labels, rows, s.units)


cdef void accumulate(State* s, Py_ssize_t size) noexcept nogil:
    """Add this batch's size-weighted values to the running sums in stats."""
    cdef int m, k = 1 + s.n_metrics
    s.stats[k] += size
    for m in range(k):
        s.stats[k + 1 + m] += s.stats[m] * size


cdef void optimizer_step(State* s, floating* tag) noexcept nogil:
    """One optimizer step over every parameter array (`tag` selects the dtype)."""
    cdef int j
    prepare_step(&s.hyper, s.iterations, &s.m_schedule, &s.step)
    for j in range(s.n_params):
        update(&s.hyper, &s.step, s.psizes[j], <floating*>s.params[j], <floating*>s.pgrads[j],
               <floating*>s.slots[3 * j], <floating*>s.slots[3 * j + 1], <floating*>s.slots[3 * j + 2])
    s.iterations += 1


cdef bint gather(State* s, Call* c, floating* tag, Py_ssize_t start, Py_ssize_t size) noexcept nogil:
    """Copy the rows order[start : start + size] into the batch buffers; return False (no copy) for a run."""
    cdef Py_ssize_t r, row, first = c.order[start]
    cdef Py_ssize_t nx = s.n_in * sizeof(floating), ny = s.units * sizeof(floating)
    for r in range(size):
        if c.order[start + r] != first + r:
            break
    else:
        return False
    cdef double t0
    if c.parallel_gather and size * nx >= PARALLEL_GATHER_BYTES:
        # Random rows are latency-bound: two threads copy about twice as fast (serial without OpenMP).
        # On a busy machine the second thread may not get a core and the copy waits for it; then the rest
        # of the call gathers serially.
        t0 = now()
        for r in prange(size, num_threads=2, schedule="static"):
            memcpy(s.xbuf + r * nx, c.x + c.order[start + r] * nx, nx)
        if now() - t0 > size * nx * SLOW_GATHER_SECONDS_PER_BYTE:
            c.parallel_gather = False
    else:
        for r in range(size):
            memcpy(s.xbuf + r * nx, c.x + c.order[start + r] * nx, nx)
    for r in range(size):
        row = c.order[start + r]
        if c.labels != NULL:
            s.lbuf[r] = c.labels[row]
        else:
            memcpy(s.ybuf + r * ny, c.y + row * ny, ny)
        if c.w != NULL:
            (<floating*>s.wbuf)[r] = (<floating*>c.w)[row]
    return True
