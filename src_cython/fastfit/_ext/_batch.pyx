# cython: cdivision=True
"""GIL-free kernels of one batch: gather, forward through the ops, score, backward, optimizer step.

A batch runs as a list of stages (`State.stages`, planned per call by `_loop.Network`): gather, the forward
pass of each op, the score (loss, metrics, loss gradient), then per op the row-wise backward and the input
gradient of Dense layers. Each stage is spread over the threads of the call (`Call.threads`):
- over **row blocks** (`Call.blocks`, at least MIN_BLOCK_ROWS rows each): runs of consecutive row stages go
  through their rows in one parallel region, so a block's rows stay in its core's cache from the gather on;
- or over **column slices** of one layer, for a layer whose weights are wider than the batch is tall: then a
  thread packs only its slice of W for the GEMM (with row blocks every thread would pack all of W);
- or, in training, over **depth slices** of a large Dense layer: thread t multiplies x[:, lo:hi] by the rows
  lo:hi of W that its parameter slice updates, so W's cache lines stay with one core (a core writing lines
  another has just read waits for them), and the partial outputs are summed in a row stage.
Training ends with the **parameter slices** (`Call.slices`): each thread computes its rows of every weight
gradient (x^T g over the whole batch) and its part of every bias gradient, then updates those parameters and
their optimizer slots while they are in its cache. No gradient buffer per thread, no reduction.

Blocks, slices and the plan depend on the thread count and the batch size only: they fix the arithmetic,
and the threads just run it; one thread running the parts one after the other gives the same bits. The
kernels work on the `State` compiled by `_loop.Network` (see `_state.pxd`) and are specialised for float or
double by the pointer type of an argument (`tag` where no other argument carries it).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy, memset
from libc.stdint cimport int64_t, uint64_t

from fastfit._ext._modes cimport MODE_TRAIN, MODE_EVALUATE, MODE_PREDICT
from fastfit._ext._allreduce cimport allreduce_sum
from fastfit._ext._activations cimport forward_rows, backward_rows, A_LINEAR
from fastfit._ext._fpu cimport fastfit_flush_denormals, fastfit_restore_fp
from fastfit._ext._dense cimport (dense_forward, dense_forward_depth, dense_sum_partials, dense_input_grad,
                                  dense_param_grads)
from fastfit._ext._losses cimport loss_rows, metric_sum, threshold_histogram
from fastfit._ext._optim cimport prepare_step, update, update_float, update_double
from fastfit._ext._rng cimport dropout_base, uniform
from fastfit._ext._layers cimport (bn_train_forward, bn_infer_forward, bn_backward, relu_forward, relu_backward,
                                   elu_forward, elu_backward, prelu_forward, prelu_input_grad, prelu_alpha_grad,
                                   noise_forward, activity_penalty, activity_backward, weight_penalty, constrain,
                                   N_GAUSSIAN_NOISE)
from fastfit._ext._state cimport (Op, State, Call, Stage, Penalty, Constraint, K_DENSE, K_ACT, K_DROPOUT, K_ACTREG,
                                  K_RELU, K_ELU, K_PRELU, K_BN, K_NOISE, MIN_BLOCK_ROWS, S_GATHER, S_GATHER_DENSE,
                                  S_FORWARD, S_FORWARD_DEPTH, S_FORWARD_SUM, S_SCORE, S_BACK, S_DX, S_PARTIAL,
                                  S_BN_FORWARD, S_BN_BACK, now)

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

ctypedef void (*gather_dense_t)(const float* x, const int64_t* order, Py_ssize_t rows, Py_ssize_t n_in,
                                const float* w, Py_ssize_t n_out, float* out, float* xcopy) noexcept nogil

cdef update_float _update_float = update[float]
cdef update_double _update_double = update[double]
# `_dense_avx2`'s fused gather + first Dense forward: loaded once and never unset, so that a call planned with
# it keeps a valid kernel even if another thread switches builds meanwhile; plans use it while `_gather_dense_on`.
cdef gather_dense_t _gather_dense = NULL
cdef bint _gather_dense_on = False
_simd_kernels = "baseline"


def simd_kernels(name=None):
    """Return (and with `name`, choose) the kernel build in use: 'baseline' or 'avx2'.

    'avx2' runs the optimizer rules built with AVX2 + FMA (`_optim_avx2`) and, for float32 training, reads a
    shuffled batch straight into a first Dense layer of at most GATHER_DENSE_UNITS units (`_dense_avx2`).
    The default is 'avx2' where the CPU has AVX2 and FMA and the modules were built, else 'baseline'.
    A change applies from the next call on.

    Raises:
        ValueError: unknown `name`, or 'avx2' on a CPU without AVX2 and FMA (or a build without it).
    """
    global _update_float, _update_double, _gather_dense, _gather_dense_on, _simd_kernels
    if name is None:
        return _simd_kernels
    if name == "baseline":
        _update_float, _update_double, _gather_dense_on = update[float], update[double], False
    elif name == "avx2":
        if not fastfit_cpu_has_avx2_fma():
            raise ValueError("simd_kernels: 'avx2' needs a CPU with AVX2 and FMA; this one lacks them")
        try:
            from fastfit._ext import _dense_avx2, _optim_avx2
        except ImportError:
            raise ValueError("simd_kernels: 'avx2' was not built on this platform") from None
        f32, f64 = _optim_avx2.addresses()
        _update_float, _update_double = <update_float><size_t>f32, <update_double><size_t>f64
        _gather_dense = <gather_dense_t><size_t>_dense_avx2.address()
        _gather_dense_on = True
    else:
        raise ValueError(f"simd_kernels: expected 'baseline' or 'avx2', got {name!r}")
    _simd_kernels = name
    return name


cdef bint gather_dense_available() noexcept nogil:
    return _gather_dense_on


try:
    simd_kernels("avx2")
except ValueError:
    pass


cdef inline int blocks_of(Call* c, Py_ssize_t size) noexcept nogil:
    """Number of row blocks for a batch of `size` rows."""
    return c.blocks if size >= c.blocks * MIN_BLOCK_ROWS else 1


cdef void run_batch(State* s, Call* c, floating* tag, int mode, Py_ssize_t start, Py_ssize_t size,
                    floating* out) noexcept nogil:
    """Run rows start..start+size of the call: mode 0 trains, 1 scores, 2 predicts into `out`; in modes 0 and
    1 a non-NULL `out` receives the batch's output (row 0 = the batch's first row).

    Leaves the batch loss and metric means in stats[0 : 1 + n_metrics] (modes 0 and 1), and adds the batch
    to the call's threshold histograms (s.hist).

    Distributed (`c.reduce.fn` set, modes 0 and 1): the rows are this rank's share of the global batch
    (`c.gstart`, `c.gsize`; `size` may be 0); the loss is scaled by the global batch, and one allreduce sums
    the gradients (training) and the batch's loss share, metric sums and histograms over the ranks before the
    optimizer step, so every rank takes the same step and sees the same values.
    """
    cdef int t, p, q, nb = blocks_of(c, size)
    cdef Py_ssize_t h
    cdef int width = 1 + s.n_metrics
    cdef bint parallel = c.threads > 1
    cdef double scale = 0, t0
    cdef bint shared = c.reduce.fn != NULL and mode != MODE_PREDICT
    cdef floating* x
    if mode == MODE_TRAIN and _gather_needed(c, start, size):
        x = <floating*>s.xbuf
    else:
        x = <floating*>c.x + (c.order[start] if mode == MODE_TRAIN else start) * s.n_in
    if mode != MODE_PREDICT:
        scale = _loss_scale(c, tag, mode, c.gstart, c.gsize)
    p = 0
    while size > 0 and p < s.n_stages:  # an empty share (distributed) runs no stage but joins the reduction
        t0 = now()
        if s.stages[p].cols:
            if parallel:
                for t in prange(c.slices, num_threads=c.slices, schedule="static", chunksize=1):
                    _column_stage(s, &s.stages[p], x, mode, size, t, c.slices)
                _note_overlap(s, c, c.slices, now() - t0)
            else:
                for t in range(c.slices):
                    _column_stage(s, &s.stages[p], x, mode, size, t, c.slices)
            p += 1
            continue
        q = p
        while q < s.n_stages and not s.stages[q].cols:
            q += 1
        if parallel and nb > 1:
            for t in prange(nb, num_threads=nb, schedule="static", chunksize=1):
                _row_stages(s, c, x, mode, start, size, t, nb, p, q, scale, out)
            _note_overlap(s, c, nb, now() - t0)
        else:
            for t in range(nb):
                _row_stages(s, c, x, mode, start, size, t, nb, p, q, scale, out)
        p = q
    if mode == MODE_PREDICT:
        return
    if size == 0:
        memset(s.bstats, 0, width * sizeof(double))
        if s.hist_size > 0:
            memset(s.bhist, 0, s.hist_size * sizeof(double))
    if shared:
        _reduce_batch(s, c, x, mode, size, nb)
    else:
        _batch_means(s, s.bstats, nb, size)
        for t in range(nb):
            for h in range(s.hist_size):
                s.hist[h] += s.bhist[t * s.hist_size + h]
    if mode != MODE_TRAIN:
        s.stats[0] += s.eval_penalty
        return
    prepare_step(&s.hyper, s.iterations, &s.m_schedule, &s.step)
    if parallel:
        for t in prange(c.slices, num_threads=c.slices, schedule="static", chunksize=1):
            _slice(s, x, size, t, c.slices, nb, not shared, True)
    else:
        for t in range(c.slices):
            _slice(s, x, size, t, c.slices, nb, not shared, True)
    if s.n_penalties > 0:
        s.stats[0] += _penalties_after_step(s, c, x)
    for t in range(s.n_constraints):
        _constrain(&s.constraints[t], x)
    s.iterations += 1


cdef void _batch_means(State* s, const double* bstats, int nb, Py_ssize_t size) noexcept nogil:
    """The batch loss and metric means into stats[0 : 1 + n_metrics] from its nb blocks' values at `bstats`
    (loss shares and metric sums, block after block), each added up in block order."""
    cdef int t, m, width = 1 + s.n_metrics
    cdef double total
    for m in range(width):
        total = 0
        for t in range(nb):
            total += bstats[t * width + m]
        s.stats[m] = total if m == 0 else total / size


cdef void _reduce_batch(State* s, Call* c, floating* x, int mode, Py_ssize_t size, int nb) noexcept nogil:
    """Distributed: this rank's gradients (training) and batch values into the reduce buffer, one allreduce
    over the ranks, then the batch loss and metric means of the global batch into stats[0 : 1 + n_metrics] and
    its histograms added to s.hist. An allreduce error is left in `c.mpi_error` (the loop stops)."""
    cdef int t, m, width = 1 + s.n_metrics
    cdef Py_ssize_t h
    cdef double total
    cdef floating* tail = <floating*>s.rbuf + s.rgrads
    for m in range(width):
        total = 0
        for t in range(nb):
            total += s.bstats[t * width + m]
        tail[m] = <floating>total
    for h in range(s.hist_size):
        total = 0
        for t in range(nb):
            total += s.bhist[t * s.hist_size + h]
        tail[width + h] = <floating>total
    if mode == MODE_TRAIN:
        if size == 0:
            memset(s.rbuf, 0, s.rgrads * sizeof(floating))
        elif c.threads > 1:
            for t in prange(c.slices, num_threads=c.slices, schedule="static", chunksize=1):
                _slice(s, x, size, t, c.slices, nb, True, False)
        else:
            for t in range(c.slices):
                _slice(s, x, size, t, c.slices, nb, True, False)
        c.mpi_error = allreduce_sum(&c.reduce, s.rbuf, s.rgrads + s.rtail)
    else:
        c.mpi_error = allreduce_sum(&c.reduce, tail, s.rtail)
    for m in range(width):
        s.stats[m] = tail[m] if m == 0 else tail[m] / <double>c.gsize
    for h in range(s.hist_size):
        s.hist[h] += tail[width + h]


cdef void forward_block(State* s, Call* c, floating* tag, int mode, Py_ssize_t j, char** act_base,
                        Py_ssize_t slot_row, floating* out, double* block_stats, double* hist) noexcept nogil:
    """Row block j of a predict or evaluate call without a hook: block `j % c.blocks` of batch `j // c.blocks`,
    the same rows through the same products as `run_batch` gives that block (so the same bits), on whichever
    thread takes it. `s` is the taking thread's copy of the call's State: its act pointers are set here from
    the workspace's (`act_base`) so that the block's outputs land in that thread's own rows of it, from row
    `slot_row` on (the pointers are offset by -r0 rows because the block stages address rows r0.. of a batch).

    MODE_PREDICT writes the block's rows of `out`. MODE_EVALUATE writes the block's loss share and metric
    sums (as `run_batch` leaves them in `bstats`) into block_stats[j * (1 + n_metrics) ...], for
    `add_block_stats`, and adds its threshold histograms (s.bhist: the thread's room for them) to `hist`, the
    taking thread's sums: counts of rows, which add up exactly in any order."""
    cdef Py_ssize_t k = j // c.blocks, start = k * c.bs, h
    cdef Py_ssize_t size = c.bs if start + c.bs <= c.n else c.n - start
    cdef int t = <int>(j % c.blocks), nb = blocks_of(c, size), i
    cdef Py_ssize_t r0 = size * t // nb
    cdef double scale = 0
    for i in range(s.n_ops):
        s.act[i + 1] = act_base[i + 1] + (slot_row - r0) * s.ops[i].n_out * <Py_ssize_t>sizeof(floating)
    if mode == MODE_EVALUATE:
        scale = _loss_scale(c, tag, mode, start, size)
        s.bstats = block_stats + k * c.blocks * (1 + s.n_metrics)  # `_score_rows` writes block t's at t * width
    _row_stages(s, c, <floating*>c.x + start * s.n_in, mode, start, size, t, nb, 0, s.n_stages, scale, out)
    if mode == MODE_EVALUATE:
        for h in range(s.hist_size):
            hist[h] += s.bhist[t * s.hist_size + h]


cdef void add_block_stats(State* s, Call* c, const double* block_stats) noexcept nogil:
    """Evaluate without a hook, after every block ran (`forward_block`): the batch loop's sums from the
    blocks' values, batch after batch, through the same operations in the same order as `run_batch` and
    `accumulate` (block sums in block order, the batch means, the weight penalties, the size-weighted running
    sums), so the same bits."""
    cdef Py_ssize_t k, start, size
    cdef int width = 1 + s.n_metrics
    for k in range(c.n_batches):
        start = k * c.bs
        size = c.bs if start + c.bs <= c.n else c.n - start
        _batch_means(s, block_stats + k * c.blocks * width, blocks_of(c, size), size)
        s.stats[0] += s.eval_penalty
        accumulate(s, size)


cdef double _penalties_after_step(State* s, Call* c, floating* tag) noexcept nogil:
    """This batch's weight penalties: the trained arrays' (summed by their slices before the step) and the
    frozen ones'."""
    cdef int t
    cdef double total = 0
    for t in range(c.slices):
        total += s.spen[t]
    for t in range(s.n_penalties):
        if s.penalties[t].param < 0:
            total += weight_penalty(<floating*>s.penalties[t].arr, <floating*>NULL, s.penalties[t].size,
                                    s.penalties[t].l1, s.penalties[t].l2)
    return total


cdef double weight_penalties(State* s, floating* tag) noexcept nogil:
    """The sum of every weight penalty at the current weights."""
    cdef int t
    cdef double total = 0
    for t in range(s.n_penalties):
        total += weight_penalty(<floating*>s.penalties[t].arr, <floating*>NULL, s.penalties[t].size,
                                s.penalties[t].l1, s.penalties[t].l2)
    return total


cdef void _constrain(Constraint* k, floating* tag) noexcept nogil:
    constrain(k.kind, <floating*>k.arr, k.rows, k.cols, k.axis, k.max_value, k.min_value, k.rate)


cdef bint _gather_needed(Call* c, Py_ssize_t start, Py_ssize_t size) noexcept nogil:
    """False when the batch's rows order[start : start + size] are consecutive rows of x (no copy needed)."""
    cdef Py_ssize_t r, first = c.order[start]
    for r in range(size):
        if c.order[start + r] != first + r:
            return True
    return False


cdef inline floating* _input(State* s, floating* x, int i, bint training) noexcept nogil:
    """The input of op i (i = n_ops: the network output): the output of the last op before it that writes
    one (dropout is skipped outside training), or the batch inputs `x`."""
    cdef int j = i - 1
    while j >= 0 and (s.ops[j].kind == K_DROPOUT or s.ops[j].kind == K_NOISE) and not training:
        j -= 1
    return <floating*>s.act[j + 1] if j >= 0 else x


cdef inline floating* _param_input(State* s, floating* x, int i) noexcept nogil:
    """The input a training op i saw (what its weight gradient multiplies): the batch inputs for op 0, else
    the output of op i - 1 (dropout included)."""
    return x if i == 0 else <floating*>s.act[i]


cdef double _loss_scale(Call* c, floating* tag, int mode, Py_ssize_t start, Py_ssize_t size) noexcept nogil:
    """The factor of the batch mean: 1 / size, or 1 / count(w != 0) with sample weights (0 if none is)."""
    cdef Py_ssize_t r, row, count = 0
    if c.w == NULL:
        return 1.0 / size
    for r in range(size):
        row = c.order[start + r] if mode == MODE_TRAIN else start + r
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


cdef void _row_stages(State* s, Call* c, floating* x, int mode, Py_ssize_t start, Py_ssize_t size, int t, int nb,
                      int p, int q, double scale, floating* out) noexcept nogil:
    """Stages p..q of the plan (all row stages) on row block t of nb; `x`: the batch inputs (or the buffer
    they are gathered into)."""
    cdef unsigned long long fp_mode = fastfit_flush_denormals()
    cdef double t0 = now()
    cdef Py_ssize_t r0 = size * t // nb, rows = size * (t + 1) // nb - r0
    cdef int k
    cdef bint training = mode == MODE_TRAIN
    cdef Stage* st
    cdef Op* op
    for k in range(p, q):
        st = &s.stages[k]
        if st.kind == S_GATHER:
            if x == <floating*>s.xbuf:
                _gather(s, c, x + r0 * s.n_in, start + r0, rows, r0)
        elif st.kind == S_GATHER_DENSE:
            if x == <floating*>s.xbuf:
                _gather_into_dense(s, c, x, start, r0, rows)
            else:
                _forward_rows(s, 0, x + r0 * s.n_in, rows, r0)
        elif st.kind == S_FORWARD:
            op = &s.ops[st.op]
            _forward_rows(s, st.op, _input(s, x, st.op, training) + r0 * op.n_in, rows, r0)
        elif st.kind == S_SCORE:
            _score_rows(s, c, x, mode, start, r0, rows, t, scale, out)
        elif st.kind == S_BACK:
            _backward_rows(s, st.op, rows, r0, x)
        elif st.kind == S_PARTIAL:
            _block_gradient(s, st.op, _param_input(s, x, st.op), rows, r0, t)
        elif st.kind == S_FORWARD_SUM:
            op = &s.ops[st.op]
            dense_sum_partials(<floating*>s.act[st.op + 1] + r0 * op.n_out, <floating*>op.partials + r0 * op.n_out,
                               c.slices - 1, size * op.n_out, <floating*>op.b, op.act, rows, op.n_out)
        else:
            op = &s.ops[st.op]
            dense_input_grad(<floating*>s.grad[st.op + 1] + r0 * op.n_out, <floating*>op.w, rows, op.n_in,
                             op.n_out, 0, op.n_in, <floating*>s.grad[st.op] + r0 * op.n_in)
    s.btime[t] = now() - t0
    fastfit_restore_fp(fp_mode)


cdef void _column_stage(State* s, Stage* st, floating* x, int mode, Py_ssize_t rows, int t, int nt) noexcept nogil:
    """Slice t of nt of one Dense op's forward product (S_FORWARD: columns of the output; S_FORWARD_DEPTH: the
    share of inputs and rows of W slice t updates) or input gradient (S_DX: columns of it, rows of W)."""
    cdef unsigned long long fp_mode = fastfit_flush_denormals()
    cdef double t0 = now()
    cdef Op* op = &s.ops[st.op]
    cdef Py_ssize_t n = op.n_out
    if st.kind == S_BN_FORWARD:
        bn_train_forward(_input(s, x, st.op, True), <floating*>s.act[st.op + 1], rows, n, n * t // nt,
                         n * (t + 1) // nt, op.bstat, op.bstat + n, <floating*>op.w, <floating*>op.b,
                         <floating*>op.mm, <floating*>op.mv, op.p0, op.p1, op.sub, op.act)
    elif st.kind == S_BN_BACK:
        bn_backward(_param_input(s, x, st.op), <floating*>s.grad[st.op + 1], <floating*>s.grad[st.op], rows, n,
                    n * t // nt, n * (t + 1) // nt, op.bstat, op.bstat + n, op.bstat + 2 * n, <floating*>op.w,
                    <floating*>op.gw, <floating*>op.gb)
    elif st.kind == S_FORWARD:
        dense_forward(_input(s, x, st.op, mode == MODE_TRAIN), <floating*>op.w, <floating*>op.b, op.act, rows, op.n_in,
                      op.n_out, op.n_out * t // nt, op.n_out * (t + 1) // nt, <floating*>s.act[st.op + 1])
    elif st.kind == S_FORWARD_DEPTH:
        dense_forward_depth(_input(s, x, st.op, mode == MODE_TRAIN), <floating*>op.w, rows, op.n_in, op.n_out,
                            op.n_in * t // nt, op.n_in * (t + 1) // nt,
                            <floating*>s.act[st.op + 1] if t == 0
                            else <floating*>op.partials + (t - 1) * rows * op.n_out)
    else:
        dense_input_grad(<floating*>s.grad[st.op + 1], <floating*>op.w, rows, op.n_in, op.n_out,
                         op.n_in * t // nt, op.n_in * (t + 1) // nt, <floating*>s.grad[st.op])
    s.btime[t] = now() - t0
    fastfit_restore_fp(fp_mode)


cdef void _score_rows(State* s, Call* c, floating* x, int mode, Py_ssize_t start, Py_ssize_t r0, Py_ssize_t rows,
                      int t, double scale, floating* out) noexcept nogil:
    """Rows r0..r0+rows of the batch: copy the output (predict), or loss share, metric sums and (training)
    the loss gradient into block t's stats."""
    cdef Py_ssize_t first
    cdef int m
    cdef double* stats = s.bstats + t * (1 + s.n_metrics)
    cdef double* hist
    cdef floating* res = _input(s, x, s.n_ops, mode == MODE_TRAIN) + r0 * s.units
    cdef floating* yb
    cdef floating* wb
    cdef int64_t* lb
    if out != NULL:  # predict: the call's output; train/evaluate: the batch's output for custom metrics
        memcpy(out + ((start if mode == MODE_PREDICT else 0) + r0) * s.units, res, rows * s.units * sizeof(floating))
        if mode == MODE_PREDICT:
            return
    if x == <floating*>s.xbuf:
        yb = <floating*>s.ybuf + r0 * s.units
        lb = s.lbuf + r0
        wb = <floating*>s.wbuf + r0
    else:
        first = (c.order[start] if mode == MODE_TRAIN else start) + r0
        yb = <floating*>c.y + first * s.units if c.y != NULL else NULL
        lb = c.labels + first if c.labels != NULL else NULL
        wb = <floating*>c.w + first if c.w != NULL else NULL
    if c.y == NULL:
        yb = NULL
    if c.labels == NULL:
        lb = NULL
    if c.w == NULL:
        wb = NULL
    stats[0] = loss_rows(s.loss, s.fused, res, yb, lb, wb, rows, s.units, scale,
                         <floating*>s.grad[s.n_ops] + r0 * s.units if mode == MODE_TRAIN else <floating*>NULL)
    if s.activity:
        for m in range(s.n_ops):
            if s.ops[m].kind == K_ACTREG:
                stats[0] += activity_penalty(<floating*>s.act[m + 1] + r0 * s.ops[m].n_out, rows * s.ops[m].n_out,
                                             s.ops[m].p0, s.ops[m].p1)
    for m in range(s.n_metrics):
        stats[1 + m] = metric_sum(s.metrics[m], s.mparams[m], res, yb, lb, rows, s.units)
    hist = s.bhist + t * s.hist_size
    if s.hist_size > 0:
        memset(hist, 0, s.hist_size * sizeof(double))
    for m in range(s.n_confusion):
        threshold_histogram(res, yb, rows, s.units, s.confusion[m].thresholds, s.confusion[m].T,
                            s.confusion[m].class_id, s.confusion[m].top_k, hist + s.confusion[m].offset)


cdef void _gather(State* s, Call* c, floating* xb, Py_ssize_t pos, Py_ssize_t rows, Py_ssize_t r0) noexcept nogil:
    """Copy the rows order[pos : pos + rows] into the batch buffers, from row r0 on (`xb`: x row r0)."""
    cdef Py_ssize_t r, nx = s.n_in * sizeof(floating)
    for r in range(rows):
        memcpy(<char*>xb + r * nx, c.x + c.order[pos + r] * nx, nx)
    _gather_targets(s, c, xb, pos, rows, r0)


cdef void _gather_into_dense(State* s, Call* c, floating* xb, Py_ssize_t start, Py_ssize_t r0,
                             Py_ssize_t rows) noexcept nogil:
    """Stage S_GATHER_DENSE on rows r0..r0+rows: the float32 kernel of `_dense_avx2` computes the first
    (Dense) op's product from the rows of x while it copies them into the batch buffer `xb`; then the bias,
    the activation, and the gather of the targets."""
    cdef Op* op = &s.ops[0]
    cdef floating* out = <floating*>s.act[1] + r0 * op.n_out
    if floating is float:
        _gather_dense(<const float*>c.x, c.order + start + r0, rows, op.n_in, <const float*>op.w, op.n_out,
                      out, xb + r0 * s.n_in)
        if op.act != A_LINEAR or op.b != NULL:
            forward_rows(op.act, out, <floating*>op.b, rows, op.n_out)
        _gather_targets(s, c, xb, start + r0, rows, r0)


cdef void _gather_targets(State* s, Call* c, floating* tag, Py_ssize_t pos, Py_ssize_t rows,
                          Py_ssize_t r0) noexcept nogil:
    """Copy the targets (and sample weights) of rows order[pos : pos + rows] into the batch buffers, from
    row r0 on."""
    cdef Py_ssize_t r, row, ny = s.units * sizeof(floating)
    for r in range(rows):
        row = c.order[pos + r]
        if c.labels != NULL:
            s.lbuf[r0 + r] = c.labels[row]
        else:
            memcpy(s.ybuf + (r0 + r) * ny, c.y + row * ny, ny)
        if c.w != NULL:
            (<floating*>s.wbuf)[r0 + r] = (<floating*>c.w)[row]


cdef void _forward_rows(State* s, int i, floating* cur, Py_ssize_t rows, Py_ssize_t r0) noexcept nogil:
    """Forward pass of op i on the `rows` rows at `cur` (batch rows r0 on), into its output buffer."""
    cdef Py_ssize_t e, n, e0
    cdef Op* op = &s.ops[i]
    cdef floating* out = <floating*>s.act[i + 1] + r0 * op.n_out
    cdef floating* mask
    cdef floating scale
    cdef uint64_t base
    if op.kind == K_DENSE:
        dense_forward(cur, <floating*>op.w, <floating*>op.b, op.act, rows, op.n_in, op.n_out, 0, op.n_out, out)
    elif op.kind == K_ACTREG:
        memcpy(out, cur, rows * op.n_out * sizeof(floating))
    elif op.kind == K_RELU:
        relu_forward(cur, out, rows * op.n_out, op.p0, op.p1, op.sub, op.p2)
    elif op.kind == K_ELU:
        elu_forward(cur, out, rows * op.n_out, op.p0)
    elif op.kind == K_PRELU:
        prelu_forward(cur, out, rows, op.n_out, <floating*>op.w, op.sub)
    elif op.kind == K_BN:  # outside training (the plan runs training's as S_BN_FORWARD)
        bn_infer_forward(cur, out, rows, op.n_out, <floating*>op.w, <floating*>op.b, <floating*>op.mm,
                         <floating*>op.mv, op.p1, op.act)
    elif op.kind == K_NOISE:
        noise_forward(op.sub, cur, out, <floating*>op.mask + r0 * op.n_out, rows * op.n_out,
                      (s.row0 + r0) * op.n_out, op.rate,
                      dropout_base(op.seed, <uint64_t>s.iterations))
    elif op.kind == K_ACT:
        memcpy(out, cur, rows * op.n_out * sizeof(floating))
        forward_rows(op.act, out, <floating*>NULL, rows, op.n_out)
    else:
        # Dropout (training only: the plan leaves it out otherwise). The draw of an element depends on its
        # index in the whole (global) batch, not in the block or this rank's share.
        n = rows * op.n_out
        e0 = r0 * op.n_out
        mask = <floating*>op.mask + e0
        scale = <floating>(1.0 / (1.0 - op.rate))
        base = dropout_base(op.seed, <uint64_t>s.iterations)
        for e in range(n):
            mask[e] = scale if uniform(base, <uint64_t>(s.row0 * op.n_out + e0 + e)) >= op.rate else 0
            out[e] = cur[e] * mask[e]


cdef void _backward_rows(State* s, int i, Py_ssize_t rows, Py_ssize_t r0, floating* x) noexcept nogil:
    """Rows r0..r0+rows of op i's row-wise backward: its gradient grad[i + 1] becomes the gradient of its
    pre-activation (Dense, batch normalization, activation ops) or of its input (dropout, noise, penalties,
    parametric activations), in place; PReLU writes its input gradient into grad[i] (when needed) and keeps
    grad[i + 1] for its alpha gradient. `x`: the batch inputs.

    After the stage of a Dense op, grad[i + 1] holds what `_slice` and the S_DX stage need.
    """
    cdef Py_ssize_t e, n
    cdef Op* op = &s.ops[i]
    cdef floating* g = <floating*>s.grad[i + 1] + r0 * op.n_out
    cdef floating* mask
    cdef floating* y = <floating*>s.act[i + 1] + r0 * op.n_out
    cdef floating* inputs = _param_input(s, x, i) + r0 * op.n_out
    if op.kind == K_ACTREG:
        activity_backward(y, g, rows * op.n_out, op.p0, op.p1)
    elif op.kind == K_RELU:
        relu_backward(inputs, g, rows * op.n_out, op.p0, op.p1, op.sub, op.p2)
    elif op.kind == K_ELU:
        elu_backward(inputs, y, g, rows * op.n_out, op.p0)
    elif op.kind == K_PRELU:
        if s.grad[i] != NULL:
            prelu_input_grad(inputs, g, <floating*>s.grad[i] + r0 * op.n_out, rows, op.n_out, <floating*>op.w,
                             op.sub)
    elif op.kind == K_NOISE:
        if op.sub != N_GAUSSIAN_NOISE:
            n = rows * op.n_out
            mask = <floating*>op.mask + r0 * op.n_out
            for e in range(n):
                g[e] = g[e] * mask[e]
    elif op.kind == K_DROPOUT:
        n = rows * op.n_out
        mask = <floating*>op.mask + r0 * op.n_out
        for e in range(n):
            g[e] = g[e] * mask[e]
    elif not (i == s.n_ops - 1 and s.fused):  # a fused last activation: the loss gave d pre-activation
        backward_rows(op.act, <floating*>s.act[i + 1] + r0 * op.n_out, g, rows, op.n_out)


cdef inline floating* _at(char* p, Py_ssize_t e, floating* tag) noexcept nogil:
    return <floating*>p + e if p != NULL else NULL


cdef double _update(State* s, int j, Py_ssize_t lo, Py_ssize_t hi, floating* tag) noexcept nogil:
    """Optimizer step on elements lo..hi of parameter array j (the step scalars are in s.step), after adding
    their penalty's gradient to theirs; returns that penalty (at the weights before the step)."""
    cdef double penalty = 0
    cdef Penalty* pen
    if hi <= lo:
        return 0
    if s.ppen[j] >= 0:
        pen = &s.penalties[s.ppen[j]]
        penalty = weight_penalty(<floating*>s.params[j] + lo, <floating*>s.pgrads[j] + lo, hi - lo, pen.l1, pen.l2)
    if floating is float:
        _update_float(&s.hyper, &s.step, hi - lo, <float*>s.params[j] + lo, <float*>s.pgrads[j] + lo,
                      _at(s.slots[3 * j], lo, tag), _at(s.slots[3 * j + 1], lo, tag),
                      _at(s.slots[3 * j + 2], lo, tag))
    else:
        _update_double(&s.hyper, &s.step, hi - lo, <double*>s.params[j] + lo, <double*>s.pgrads[j] + lo,
                       _at(s.slots[3 * j], lo, tag), _at(s.slots[3 * j + 1], lo, tag),
                       _at(s.slots[3 * j + 2], lo, tag))
    return penalty


cdef void _block_gradient(State* s, int i, floating* inputs, Py_ssize_t rows, Py_ssize_t r0, int t) noexcept nogil:
    """Stage S_PARTIAL: block t's part of Dense op i's weight and bias gradients, over its rows r0..r0+rows
    (`inputs`: the op's input over the whole batch)."""
    cdef Op* op = &s.ops[i]
    cdef floating* part = <floating*>op.parts + t * (op.n_in + 1) * op.n_out
    dense_param_grads(inputs + r0 * op.n_in, <floating*>s.grad[i + 1] + r0 * op.n_out, rows, op.n_in, op.n_out,
                      0, op.n_in, 0, op.n_out, part, part + op.n_in * op.n_out if op.gb != NULL else NULL)


cdef void _sum_parts(const floating* parts, Py_ssize_t stride, int nb, Py_ssize_t e0, Py_ssize_t e1,
                     floating* total) noexcept nogil:
    """total[e0:e1] = the sum over the nb blocks (in block order) of parts[b * stride + e0 : ... + e1]."""
    cdef Py_ssize_t e
    cdef int b
    for e in range(e0, e1):
        total[e] = parts[e]
    for b in range(1, nb):
        for e in range(e0, e1):
            total[e] += parts[b * stride + e]


cdef void _slice(State* s, floating* x, Py_ssize_t rows, int t, int nt, int nb, bint grads,
                 bint step) noexcept nogil:
    """Parameter slice t of nt: with `grads`, its rows of every weight gradient and part of every bias gradient
    (over the whole batch, or summed from the batch's nb block parts); with `step`, the optimizer step on those
    parameters (`x`: the batch inputs). Distributed training runs the two apart, with the allreduce between."""
    cdef unsigned long long fp_mode = fastfit_flush_denormals()
    cdef int i
    cdef Op* op
    cdef Py_ssize_t lo, hi, c0, c1, stride, size
    cdef double penalty = 0
    for i in range(s.first_param, s.n_ops):
        op = &s.ops[i]
        if op.kind == K_PRELU and op.pw >= 0:
            size = 1 if op.sub else op.n_out
            c0, c1 = size * t // nt, size * (t + 1) // nt
            if grads:
                prelu_alpha_grad(_param_input(s, x, i), <floating*>s.grad[i + 1], rows, op.n_out, c0, c1, op.sub,
                                 <floating*>op.gw)
            if step:
                penalty += _update(s, op.pw, c0, c1, x)
            continue
        if op.kind == K_BN:  # the gradients were computed by S_BN_BACK
            c0, c1 = op.n_out * t // nt, op.n_out * (t + 1) // nt
            if not step:
                continue
            if op.pw >= 0:
                penalty += _update(s, op.pw, c0, c1, x)
            if op.pb >= 0:
                penalty += _update(s, op.pb, c0, c1, x)
            continue
        if op.kind != K_DENSE or op.pw < 0:  # no parameters, or frozen
            continue
        lo, hi = op.n_in * t // nt, op.n_in * (t + 1) // nt
        c0, c1 = op.n_out * t // nt, op.n_out * (t + 1) // nt
        if not grads:
            pass
        elif op.parts != NULL:
            stride = (op.n_in + 1) * op.n_out
            _sum_parts(<floating*>op.parts, stride, nb, lo * op.n_out, hi * op.n_out, <floating*>op.gw)
            if op.gb != NULL:
                _sum_parts(<floating*>op.parts + op.n_in * op.n_out, stride, nb, c0, c1, <floating*>op.gb)
        else:
            dense_param_grads(_param_input(s, x, i), <floating*>s.grad[i + 1], rows, op.n_in,
                              op.n_out, lo, hi, c0, c1, <floating*>op.gw, <floating*>op.gb)
        if step:
            penalty += _update(s, op.pw, lo * op.n_out, hi * op.n_out, x)
            if op.pb >= 0:
                penalty += _update(s, op.pb, c0, c1, x)
    if step:
        s.spen[t] = penalty
    fastfit_restore_fp(fp_mode)


cdef void accumulate(State* s, Py_ssize_t size) noexcept nogil:
    """Add this batch's size-weighted values to the running sums in stats."""
    cdef int m, k = 1 + s.n_metrics
    s.stats[k] += size
    for m in range(k):
        s.stats[k + 1 + m] += s.stats[m] * size
