# cython: cdivision=True
"""The Cython training engine: `Network` with train/evaluate/predict loops (docs/architecture.md).

Python-level code (the methods of `Network`) validates every argument, reads the optimizer and hook, and
allocates the workspaces as NumPy arrays kept on the object. It then calls the fused cdef loop `_run`
(specialised for float or double by a typed NULL pointer) that runs the whole call with the GIL released,
using the batch kernels of `_batch`. The loop takes the GIL only inside `_call_hook`, the one trampoline into Python,
and for a signal check at most every 0.25 s when no hook is called.
"""
import threading

import numpy as np
cimport numpy as cnp
from cython cimport floating
from cpython.dict cimport PyDict_SetItem
from cpython.exc cimport PyErr_CheckSignals
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.math cimport isfinite
from libc.string cimport memset
from libc.stdint cimport int64_t

from fastfit._ext._activations cimport A_LINEAR, A_SOFTMAX, A_SIGMOID
from fastfit._ext._losses cimport L_CCE, L_SCCE, L_BCE, L_SCCE_LOGITS
from fastfit._ext._optim cimport O_NADAM
from fastfit._ext._modes cimport (MODE_TRAIN, MODE_EVALUATE, MODE_PREDICT, PHASE_BATCH_BEGIN,
                                    PHASE_BATCH_END)
from fastfit._ext._fpu cimport fastfit_flush_denormals, fastfit_restore_fp
from fastfit._ext._state cimport (Op, State, Call, Stage, Penalty, Constraint, Confusion, K_DENSE, K_ACT, K_DROPOUT, K_ACTREG,
                                  K_RELU, K_ELU, K_PRELU, K_BN, K_NOISE, MIN_BLOCK_ROWS, MIN_SPLIT_WEIGHTS,
                                  S_GATHER, S_GATHER_DENSE, S_FORWARD, S_SCORE, S_BACK, S_DX,
                                  S_PARTIAL, S_FORWARD_DEPTH, S_FORWARD_SUM, S_BN_FORWARD, S_BN_BACK,
                                  GATHER_DENSE_UNITS, PARTIAL_ROWS_PER_UNIT, now)
from fastfit._ext._batch cimport run_batch, accumulate, gather_dense_available, weight_penalties
from fastfit._ext._blas cimport pin_one_thread, unpin
from fastfit._ext._blas import blas_threads
from fastfit.engine.logs import Logs
from fastfit.contract.names import (ACTIVATIONS, CONSTRAINTS, ENGINE_LOSSES, ENGINE_NAMES, METRICS, NOISE_OPS,
                                    OPTIMIZERS)
from fastfit.contract.checks import (code, check_confusion, check_confusion_units, check_dtype, check_end_calls,
                                     check_float_array, check_int_array, check_labels, check_metrics,
                                     check_positive_int, check_hook, check_predictions, histogram_size, split_entry)
from fastfit.contract.ops import ActivationOp, DenseOp, DropoutOp, parse_ops
from fastfit.contract.optimizer import read_number, read_optimizer

from cython.parallel cimport prange, threadid
from fastfit._ext._batch cimport add_block_stats, forward_block

cnp.import_array()

# The compiled values of the _modes.pxd enums (tests/contract/test_modes.py compares them with contract.modes).
MODE_VALUES = {"TRAIN": MODE_TRAIN, "EVALUATE": MODE_EVALUATE, "PREDICT": MODE_PREDICT}
PHASE_VALUES = {"BATCH_BEGIN": PHASE_BATCH_BEGIN, "BATCH_END": PHASE_BATCH_END}

cdef double SIGNAL_PERIOD = 0.25
# Threads of a call: a batch splits into at most this many row blocks and parameter slices (_batch.pyx),
# and only when its Dense layers do at least MIN_SPLIT_WORK multiply-adds per batch (below it, starting the
# threads costs more than they save; docs/performance.md has the measurements).
cdef int MAX_THREADS = 8
cdef Py_ssize_t MIN_SPLIT_WORK = 1 << 19


cdef char* _keep_new(list keep, tuple shape, dtype):
    """Allocate a zeroed workspace, append it to `keep` (which owns it) and return its data pointer."""
    arr = np.zeros(shape, dtype=dtype)
    keep.append(arr)
    return _ptr(arr)


cdef void* _malloc(size_t nbytes) except NULL:
    """PyMem_Malloc that raises MemoryError instead of returning NULL."""
    cdef void* p = PyMem_Malloc(nbytes if nbytes > 0 else 1)
    if p == NULL:
        raise MemoryError()
    return p


cdef inline bint _plain_float(object arr, int typenum, Py_ssize_t rows, Py_ssize_t cols, bint writeable):
    """True when `check_float_array(arr, dtype, what, shape=(rows, cols), writeable=...)` would pass (rows or
    cols -1: any): a 2-D, C-contiguous, native-order ndarray of the dtype. The checks' own path, which
    explains what is wrong, runs whenever this says False."""
    if not isinstance(arr, cnp.ndarray):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>arr
    return (cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_NDIM(a) == 2
            and cnp.PyArray_IS_C_CONTIGUOUS(a) and (rows < 0 or a.shape[0] == rows)
            and (cols < 0 or a.shape[1] == cols) and a.shape[0] <= 2147483647 and a.shape[1] <= 2147483647
            and (not writeable or cnp.PyArray_ISWRITEABLE(a)))


cdef inline char* _ptr(object arr):
    return <char*>cnp.PyArray_DATA(<cnp.ndarray>arr) if arr is not None else NULL


# ---------------------------------------------------------------------------------------------------------
# The trampoline and the loops

cdef int _call_hook(Network net, object hook, object optimizer, int phase, Py_ssize_t batch,
                    Py_ssize_t size, object stats) except -1:
    """Call the hook at a batch boundary (GIL held); return 1 to stop. Syncs the optimizer both ways."""
    if optimizer is not None:
        net._write_back(optimizer)
    if phase == PHASE_BATCH_END and net._end_calls is not None:
        stop = _call_end(net, batch, size)
    else:
        stop = hook(phase, batch, size, stats)
    PyErr_CheckSignals()
    if optimizer is not None:
        # This runs after every batch some callback watches, on caches the batch just filled: a float
        # (fastfit's `optimizer.lr` is one) is read in C, anything else through the checks.
        lr = optimizer.lr
        net.s.hyper.lr = PyFloat_AS_DOUBLE(lr) if PyFloat_Check(lr) else read_number(optimizer, "lr")
    return 1 if stop else 0


cdef bint _call_end(Network net, Py_ssize_t batch, Py_ssize_t size) except -1:
    """What `hook(1, batch, size, stats)` does, for a hook with `end_calls`: the same batch-end logs, built
    here, go to each callback in turn; returns the model's `stop_training` (training only). Skipping the
    hook's Python frames matters because this runs once per batch, on caches the batch just filled."""
    cdef Py_ssize_t i
    cdef tuple keys = net._end_keys
    index = batch  # one int object, as the hook passes it
    logs = Logs()  # the hook's logs type: aliases of the keys answer
    PyDict_SetItem(logs, "batch", index)
    PyDict_SetItem(logs, "size", size)
    for i in range(len(keys)):
        PyDict_SetItem(logs, keys[i], net.s.stats[i])
    for call in net._end_calls:
        call(index, logs)
    model = net._stop_model
    return model is not None and bool(model.stop_training)


cdef int _run(Network net, floating* tag, int mode, object hook, object optimizer, floating* out) except -1:
    """Run a call of `mode` (MODE_TRAIN, MODE_EVALUATE, or MODE_PREDICT writing into `out`)."""
    cdef State* s = &net.s
    cdef Call* c = &net.c
    cdef Py_ssize_t k, start, size, lo, hi
    cdef int stop = 0
    cdef bint call_end
    cdef double t, last_end, last_signal
    cdef unsigned long long fp_mode
    stats = net._stats if mode != MODE_PREDICT else net._pstats
    last_end = last_signal = now()
    with nogil:
        fp_mode = fastfit_flush_denormals()
        for k in range(c.n_batches):
            start = k * c.bs
            size = c.bs if start + c.bs <= c.n else c.n - start
            if mode == MODE_PREDICT:
                s.stats[0] = start
            if c.begin:
                fastfit_restore_fp(fp_mode)
                with gil:
                    stop = _call_hook(net, hook, optimizer, PHASE_BATCH_BEGIN, k, size, stats)
                fastfit_flush_denormals()
                if stop:
                    break
            # Distributed: this rank runs its contiguous share lo..hi of the global batch (see _reduce_batch).
            c.gstart, c.gsize, lo, hi = start, size, 0, size
            if c.reduce.fn != NULL and mode != MODE_PREDICT:
                lo = size * c.reduce.rank // c.reduce.size
                hi = size * (c.reduce.rank + 1) // c.reduce.size
            s.row0 = lo
            run_batch(s, c, tag, mode, start + lo, hi - lo, out)
            if c.mpi_error != 0:
                break
            if mode == MODE_TRAIN and c.first_bad < 0 and not isfinite(s.stats[0]):
                c.first_bad = k
            if mode != MODE_PREDICT:
                accumulate(s, size)
            t = now()
            call_end = c.end and (c.interval <= 0 or k == c.n_batches - 1 or t - last_end >= c.interval)
            if call_end:
                last_end = t
                last_signal = t
                fastfit_restore_fp(fp_mode)
                with gil:
                    stop = _call_hook(net, hook, optimizer, PHASE_BATCH_END, k, size, stats)
                fastfit_flush_denormals()
                if stop:
                    break
            elif c.begin:
                last_signal = t
            elif c.signals and t - last_signal >= SIGNAL_PERIOD:
                last_signal = t
                fastfit_restore_fp(fp_mode)
                with gil:
                    PyErr_CheckSignals()
                fastfit_flush_denormals()
        fastfit_restore_fp(fp_mode)
    return 0


cdef extern from "Python.h":
    int _pending_signals "PyErr_CheckSignals" ()  # GIL held; -1 with the handler's exception set


cdef Py_ssize_t _forward_blocks_count(Call* c) noexcept nogil:
    """Row blocks of a predict or evaluate call: `c.blocks` per batch, fewer in a last batch too small to
    split."""
    cdef Py_ssize_t last = c.n - (c.n_batches - 1) * c.bs
    return (c.n_batches - 1) * c.blocks + (c.blocks if last >= c.blocks * MIN_BLOCK_ROWS else 1)


cdef int _forward_shared(Network net, floating* tag, int mode, floating* out, State* local, char** act_base,
                         Py_ssize_t slot_rows, double* block_stats, double* hists) except -1:
    """predict or evaluate without a hook on `c.threads` threads that take the row blocks of all batches in
    turn (one parallel region for the call, no wait at each batch's end): a thread that finds its core busy
    takes fewer blocks instead of holding the other one up. Each block is `run_batch`'s block
    (`forward_block`), so the output is the same bits as the batch loop's; evaluate then adds the blocks'
    loss and metric sums up batch by batch as the batch loop does (`add_block_stats`), and the threads'
    histograms (`hists`, hist_size per thread) into the call's. `local[t]`: thread t's State copy, which
    writes into the workspace rows t * slot_rows on (`act_base`: the workspace's act pointers);
    `block_stats`: room for every block's values (evaluate)."""
    cdef State* s = &net.s
    cdef Call* c = &net.c
    cdef Py_ssize_t j, h, n_blocks = _forward_blocks_count(c)
    cdef int t
    cdef int flags[1]           # flags[0]: stop (a signal handler raised); shared by the threads
    cdef double last[1]         # last signal check (thread 0, the calling thread, which handles signals)
    cdef unsigned long long fp_mode
    flags[0] = 0
    last[0] = now()
    with nogil:
        fp_mode = fastfit_flush_denormals()
        for j in prange(n_blocks, num_threads=c.threads, schedule="dynamic", chunksize=1):
            t = threadid()
            if flags[0] == 0:
                forward_block(&local[t], c, tag, mode, j, act_base, t * slot_rows, out, block_stats,
                              hists + t * s.hist_size)
                if t == 0 and c.signals and now() - last[0] >= SIGNAL_PERIOD:
                    last[0] = now()
                    with gil:
                        if _pending_signals() != 0:
                            flags[0] = 1
        fastfit_restore_fp(fp_mode)
    if flags[0]:
        return -1  # the handler's exception (KeyboardInterrupt) is set
    if mode == MODE_EVALUATE:
        add_block_stats(s, c, block_stats)
        for t in range(c.threads):
            for h in range(s.hist_size):
                s.hist[h] += hists[t * s.hist_size + h]
    return 0


def _region_threads(int n):
    """The threads one parallel region of this module runs n iterations on (static, one each): n when the
    module is built with OpenMP and the runtime grants n threads, 1 when its prange is serial."""
    cdef int i, most = 0
    cdef int seen[64]
    if not 1 <= n <= 64:
        raise ValueError(f"n: expected 1..64, got {n}")
    with nogil:
        for i in prange(n, num_threads=n, schedule="static", chunksize=1):
            seen[i] = threadid()
    for i in range(n):
        most = max(most, seen[i] + 1)
    return most


# ---------------------------------------------------------------------------------------------------------
# The Python-facing class

cdef class Network:
    """A chain of ops compiled for the GIL-free loops (the engine contract of docs/architecture.md).

    Arguments:
        ops: list of ('dense', W, b), ('activation', name) and ('dropout', rate, seed) tuples. W and b are
            updated in place.
        loss: canonical loss name.
        metrics: list of canonical metric names.
        dtype: numpy.float32 or numpy.float64.

    Raises:
        ValueError: unknown names, arrays of the wrong dtype, layout or shape, widths that do not chain.
    """
    cdef State s
    cdef Call c
    cdef readonly object dtype
    cdef int _typenum                # the NumPy type number of dtype
    cdef list _keep              # arrays whose data the State points into
    cdef list _params            # parameter arrays in op order (W0, b0, W1, ...)
    cdef list _work              # workspaces of the current capacity
    cdef Py_ssize_t _capacity
    cdef object _stats, _pstats
    cdef readonly object confusion_counts   # the threshold histograms of the last train/evaluate call
    cdef object _thresholds_keep
    cdef list _op_specs          # validated [kind, act, W, b, rate, seed, trainable, width, extra] per internal op
    cdef list _penalty_arrays    # the arrays of penalties and constraints (the State points into them)
    cdef object _slots_keep
    cdef list _parts_keep        # the per-block gradient parts of the current call
    cdef list _partials_keep     # the partial outputs of depth-split forward products of the current call
    cdef int _stage_capacity     # entries of s.stages
    cdef bint _busy
    cdef tuple _end_calls, _end_keys     # the hook's `end_calls` for this call (None: call the hook)
    cdef object _batch_out               # the hook's `predictions` for this call (None: no copy)
    cdef object _stop_model
    cdef public int split_threads    # 0: split each batch for as many threads as BLAS may use; n: for n
    cdef public bint serial          # run the blocks and slices of a split one after the other (same bits)

    def __cinit__(self):
        self.s.ops = NULL
        self.s.metrics = NULL
        self.s.mparams = NULL
        self.s.confusion = NULL
        self.s.bhist = NULL
        self.s.hist = NULL
        self.s.n_confusion = 0
        self.s.hist_size = 0
        self.s.params = self.s.pgrads = self.s.slots = self.s.act = self.s.grad = NULL
        self.s.psizes = NULL
        self.s.bstats = self.s.btime = NULL
        self.s.stages = NULL
        self.s.ppen = NULL
        self.s.penalties = NULL
        self.s.constraints = NULL
        self.s.spen = NULL
        self.s.n_penalties = self.s.n_constraints = 0
        self.s.eval_penalty = 0
        self.s.n_stages = 0
        self.s.n_parts = 0

    def __dealloc__(self):
        PyMem_Free(self.s.ops)
        PyMem_Free(self.s.metrics)
        PyMem_Free(self.s.mparams)
        PyMem_Free(self.s.confusion)
        PyMem_Free(self.s.bhist)
        PyMem_Free(self.s.params)
        PyMem_Free(self.s.pgrads)
        PyMem_Free(self.s.psizes)
        PyMem_Free(self.s.slots)
        PyMem_Free(self.s.act)
        PyMem_Free(self.s.grad)
        PyMem_Free(self.s.bstats)
        PyMem_Free(self.s.btime)
        PyMem_Free(self.s.stages)
        PyMem_Free(self.s.ppen)
        PyMem_Free(self.s.penalties)
        PyMem_Free(self.s.constraints)
        PyMem_Free(self.s.spen)

    def __init__(self, ops, loss, metrics, dtype, confusion=()):
        self.dtype = check_dtype(dtype)
        self._typenum = self.dtype.num
        code(loss, ENGINE_LOSSES, "loss")
        self.s.loss = code(loss, ENGINE_NAMES, "loss")
        metrics = check_metrics(metrics, loss)
        specs = check_confusion(confusion, loss)
        self.s.n_metrics = len(metrics)
        self.s.metrics = <int*>_malloc(len(metrics) * sizeof(int))
        self.s.mparams = <double*>_malloc(len(metrics) * sizeof(double))
        for m, entry in enumerate(metrics):
            name, param = split_entry(entry)
            self.s.metrics[m] = code(name, METRICS, "metrics")
            self.s.mparams[m] = (float(param) if param is not None
                                 else float("nan") if name == "binary_accuracy" else 5.0)
        self.s.n_confusion = len(specs)
        self.s.confusion = <Confusion*>_malloc(len(specs) * sizeof(Confusion))
        self._thresholds_keep = [thresholds for thresholds, _, _ in specs]
        offset = 0
        for m, (thresholds, class_id, top_k) in enumerate(specs):
            self.s.confusion[m].thresholds = <const double*>_ptr(thresholds)
            self.s.confusion[m].T = len(thresholds)
            self.s.confusion[m].class_id = class_id
            self.s.confusion[m].top_k = top_k
            self.s.confusion[m].offset = offset
            offset += histogram_size(thresholds)
        self.s.hist_size = offset
        self.confusion_counts = np.zeros(offset)
        self.s.hist = <double*>_ptr(self.confusion_counts)
        self._compile_ops(ops)
        self._capacity = 0
        self._work = []
        self._stats = np.zeros(3 + 2 * self.s.n_metrics)
        self._pstats = np.zeros(1)

    def _compile_ops(self, ops):
        """Parse the op list (`contract.ops.parse_ops`), fuse each Dense (or batch normalization) with a following
        activation, and fill the C op table."""
        if self.s.ops != NULL:
            raise RuntimeError("Network: already initialised")
        specs, extras = [], []
        for op in parse_ops(ops, self.dtype):
            if isinstance(op, DenseOp):
                specs.append([K_DENSE, A_LINEAR, op.W, op.b, 0.0, 0, op.trainable, None, None])
            elif isinstance(op, ActivationOp):
                act = ACTIVATIONS.index(op.name)
                last = specs[len(specs) - 1] if specs else None
                if last is not None and last[1] == A_LINEAR and (
                        last[0] == K_DENSE or (last[0] == K_BN and act != A_SOFTMAX)):
                    last[1] = act
                else:
                    specs.append([K_ACT, act, None, None, 0.0, 0, False, None, None])
            elif isinstance(op, DropoutOp):
                specs.append([K_DROPOUT, A_LINEAR, None, None, op.rate, op.seed & (2**64 - 1), False, None, None])
            elif op.kind in ("penalty", "constraint"):
                extras.append(op.op)
            else:
                spec = _layer_spec(op.op, op.width)
                if spec is not None:
                    specs.append(spec)
        self._op_specs = specs
        self._fill_ops(specs)
        self._fill_penalties(extras)
        last = specs[len(specs) - 1][1] if specs else A_LINEAR
        self.s.fused = ((last == A_SOFTMAX and self.s.loss in (L_CCE, L_SCCE))
                        or (last == A_SIGMOID and self.s.loss == L_BCE))
        self.s.n_in = -1
        for spec in specs:  # the first op that fixes a width fixes the input width
            if spec[0] == K_DENSE:
                self.s.n_in = spec[2].shape[0]
                break
            if spec[7] is not None:
                self.s.n_in = spec[7]
                break
        if self.s.n_in != -1:
            self._set_widths(self.s.n_in)

    cdef _fill_ops(self, list specs):
        """The C op table, parameter and gradient arrays of the compiled specs."""
        cdef Op* dst
        self.s.n_ops = len(specs)
        self.s.ops = <Op*>_malloc(len(specs) * sizeof(Op))
        self.s.act = <char**>_malloc((len(specs) + 1) * sizeof(char*))
        # The most a plan holds (see _plan): a gather, a forward per op, the score, and per op a backward, a
        # block gradient and an input gradient.
        self._stage_capacity = 4 * len(specs) + 2
        self.s.stages = <Stage*>_malloc(self._stage_capacity * sizeof(Stage))
        self.s.grad = <char**>_malloc((len(specs) + 1) * sizeof(char*))
        self.s.first_param = len(specs)
        self._keep, self._params = [], []
        grads = []
        frozen = []
        # The gradients are views into one buffer, followed by the batch values distributed training reduces.
        tail = 1 + self.s.n_metrics + self.s.hist_size
        total = sum(arr.size for (_, _, W, b, _, _, trainable, _, _) in specs if trainable
                    for arr in (W, b) if arr is not None)
        rbuf = np.zeros(total + tail, dtype=self.dtype)
        used = 0
        for i, (kind, act, W, b, rate, seed, trainable, width, extra) in enumerate(specs):
            dst = &self.s.ops[i]
            dst.kind, dst.act, dst.rate, dst.seed = kind, act, rate, seed
            dst.w = dst.b = dst.gw = dst.gb = dst.mask = dst.mm = dst.mv = NULL
            dst.bstat = NULL
            dst.pw = dst.pb = -1
            dst.p0 = dst.p1 = dst.p2 = 0
            dst.sub = 0
            if extra is not None:
                dst.p0, dst.p1, dst.p2, dst.sub = extra["p"][0], extra["p"][1], extra["p"][2], extra["sub"]
            if kind == K_BN:
                dst.mm, dst.mv = _ptr(extra["mean"]), _ptr(extra["var"])
                frozen += [extra["mean"], extra["var"]]
                dst.bstat = <double*>_keep_new(frozen, (4 * extra["mean"].shape[0],), np.float64)
            if W is None and b is None:
                continue
            if not trainable:  # frozen: forward and input gradient, no parameters
                dst.w, dst.b = _ptr(W), _ptr(b)
                frozen += [W, b]
                continue
            self.s.first_param = min(self.s.first_param, i)
            for which, arr in ((0, W), (1, b)):
                if arr is None:
                    continue
                g = rbuf[used:used + arr.size].reshape(arr.shape)
                used += arr.size
                if which == 0:
                    dst.w, dst.gw, dst.pw = _ptr(arr), _ptr(g), len(self._params)
                else:
                    dst.b, dst.gb, dst.pb = _ptr(arr), _ptr(g), len(self._params)
                self._params.append(arr)
                grads.append(g)
        self._keep = self._params + grads + frozen + [rbuf]
        self.s.rbuf, self.s.rgrads, self.s.rtail = _ptr(rbuf), total, tail
        n = self.s.n_params = len(self._params)
        self.s.params = <char**>_malloc(n * sizeof(char*))
        self.s.pgrads = <char**>_malloc(n * sizeof(char*))
        self.s.psizes = <Py_ssize_t*>_malloc(n * sizeof(Py_ssize_t))
        self.s.slots = <char**>_malloc(3 * n * sizeof(char*))
        self.s.ppen = <int*>_malloc(n * sizeof(int))
        for j in range(n):
            self.s.params[j] = _ptr(self._params[j])
            self.s.pgrads[j] = _ptr(grads[j])
            self.s.psizes[j] = self._params[j].size
            self.s.ppen[j] = -1
        self._reserve_parts(1)

    cdef _fill_penalties(self, list extras):
        """The weight penalties (one per array: later ones add up) and constraints of the op list."""
        cdef Penalty* pen
        cdef Constraint* con
        penalties = [op for op in extras if op[0] == "penalty" and (op[2] or op[3])]
        constraints = [op for op in extras if op[0] == "constraint"
                       and any(p is op[1] for p in self._params)]  # frozen arrays are never updated
        self.s.penalties = <Penalty*>_malloc(len(penalties) * sizeof(Penalty))
        self.s.constraints = <Constraint*>_malloc(len(constraints) * sizeof(Constraint))
        self.s.n_penalties, self.s.n_constraints = 0, 0
        for op in penalties:  # one per array (`parse_ops` refuses a second)
            j = next((k for k, p in enumerate(self._params) if p is op[1]), -1)
            pen = &self.s.penalties[self.s.n_penalties]
            pen.arr, pen.size, pen.l1, pen.l2, pen.param = _ptr(op[1]), op[1].size, op[2], op[3], j
            if j >= 0:
                self.s.ppen[j] = self.s.n_penalties
            self.s.n_penalties += 1
        for op in constraints:
            arr = op[1]
            con = &self.s.constraints[self.s.n_constraints]
            con.kind = CONSTRAINTS.index(op[2])
            con.arr = _ptr(arr)
            con.rows, con.cols = (arr.shape[0], arr.shape[1]) if arr.ndim == 2 else (1, arr.shape[0])
            con.axis = op[6] if arr.ndim == 2 else 1
            con.max_value, con.min_value, con.rate = op[3], op[4], op[5]
            self.s.n_constraints += 1
        self.s.activity = any(spec[0] == K_ACTREG for spec in self._op_specs)
        self._penalty_arrays = [op[1] for op in penalties + constraints]

    def _set_widths(self, Py_ssize_t n_in):
        """Give every op its input/output width, starting from `n_in` features.

        Raises:
            ValueError: an op that needs another width (batch normalization, PReLU).
        """
        width = n_in
        for i, spec in enumerate(self._op_specs):
            if spec[7] is not None and spec[7] != width:
                raise ValueError(f"x: expected {spec[7]} features per row (the width of a layer op), got {width}")
            self.s.ops[i].n_in = width
            if spec[0] == K_DENSE:
                width = spec[2].shape[1]
            self.s.ops[i].n_out = width
        self.s.n_in, self.s.units = n_in, width

    def _reserve(self, Py_ssize_t rows):
        """Make sure the workspaces hold `rows` rows (allocated here, never in GIL-free code)."""
        if rows <= self._capacity:
            return
        cdef int i, L = self.s.n_ops
        cdef list work = []
        dt = self.dtype
        for i in range(L):
            self.s.act[i + 1] = _keep_new(work, (rows, self.s.ops[i].n_out), dt)
            if self.s.ops[i].kind == K_DROPOUT or self.s.ops[i].kind == K_NOISE:
                self.s.ops[i].mask = _keep_new(work, (rows, self.s.ops[i].n_out), dt)
        self.s.act[0] = NULL
        self.s.grad[L] = _keep_new(work, (rows, self.s.units), dt)
        for i in range(L - 1, -1, -1):
            if i <= self.s.first_param:
                self.s.grad[i] = NULL
            elif self.s.ops[i].kind in (K_DENSE, K_PRELU, K_BN):  # ops that write their input gradient apart
                self.s.grad[i] = _keep_new(work, (rows, self.s.ops[i].n_in), dt)
            else:
                self.s.grad[i] = self.s.grad[i + 1]
        self.s.xbuf = _keep_new(work, (rows, self.s.n_in), dt)
        self.s.ybuf = _keep_new(work, (rows, self.s.units), dt)
        self.s.lbuf = <int64_t*>_keep_new(work, (rows,), np.int64)
        self.s.wbuf = _keep_new(work, (rows,), dt)
        self._work = work
        self._capacity = rows

    def _reserve_parts(self, int parts):
        """Make sure the per-part arrays have room for `parts` row blocks or column slices (allocated here,
        never in GIL-free code)."""
        if parts <= self.s.n_parts:
            return
        bstats = <double*>_malloc(parts * (1 + self.s.n_metrics) * sizeof(double))
        btime = <double*>_malloc(parts * sizeof(double))
        spen = <double*>_malloc(parts * sizeof(double))
        bhist = <double*>_malloc(parts * self.s.hist_size * sizeof(double))
        PyMem_Free(self.s.bstats)
        PyMem_Free(self.s.btime)
        PyMem_Free(self.s.spen)
        PyMem_Free(self.s.bhist)
        self.s.bstats, self.s.btime, self.s.spen, self.s.bhist = bstats, btime, spen, bhist
        self.s.n_parts = parts

    cdef Py_ssize_t _bind_data(self, x, y, sample_weight, bint with_targets) except -1:
        """Validate x (and y, sample_weight) and point the call at them; return the number of rows."""
        if not _plain_float(x, self._typenum, -1, -1, False):
            x = check_float_array(x, self.dtype, "x", ndim=2)
        if self.s.n_in == -1:  # no Dense op: the chain keeps the width of the first x it sees
            self._set_widths(x.shape[1])
        if x.shape[1] != self.s.n_in:
            raise ValueError(f"x: expected {self.s.n_in} features per row, got shape {x.shape}")
        n = x.shape[0]
        self.c.x, self.c.y, self.c.labels, self.c.w = _ptr(x), NULL, NULL, NULL
        if with_targets:
            if self.s.loss == L_SCCE or self.s.loss == L_SCCE_LOGITS:
                check_int_array(y, "y", shape=(n,))
                check_labels(y, self.s.units, "y (sparse labels)")
                self.c.labels = <int64_t*>_ptr(y)
            else:
                self.c.y = _ptr(check_float_array(y, self.dtype, "y", shape=(n, self.s.units)))
            check_confusion_units([(None, self.s.confusion[m].class_id, 0) for m in range(self.s.n_confusion)],
                                  self.s.units)
            if sample_weight is not None:
                self.c.w = _ptr(check_float_array(sample_weight, self.dtype, "sample_weight", shape=(n,)))
        self.c.n = n
        return n

    cdef _bind_batches(self, Py_ssize_t n, batch_size, hook, int mode):
        bs = check_positive_int(batch_size, "batch_size")
        self.c.bs = bs
        self.c.n_batches = (n + bs - 1) // bs
        self.c.begin, self.c.end, self.c.interval = check_hook(hook) if hook is not None else (False, False, 0.0)
        # The hook's optional `end_calls` (docs/architecture.md, "Hooks"): None, or the engine calls them itself.
        self._end_calls, self._end_keys, self._stop_model = (check_end_calls(hook, self.s.n_metrics)
                                                             if mode != MODE_PREDICT else (None, None, None))
        self._batch_out = check_predictions(hook, min(bs, n), self.s.units, self.dtype) if mode != MODE_PREDICT else None
        self.c.first_bad = -1
        self.c.mpi_error = 0
        # Several threads only where BLAS may use them (OPENBLAS_NUM_THREADS=1: one core), and only for
        # batches with enough matrix work to pay for starting them (tiny layers run faster on one).
        threads = self.split_threads if self.split_threads > 0 else blas_threads()
        if self.split_threads <= 0 and min(bs, n) * self._weights_per_row() < MIN_SPLIT_WORK:
            threads = 1
        threads = max(1, min(threads, MAX_THREADS))
        self.c.blocks = max(1, min(threads, bs // MIN_BLOCK_ROWS))
        self.c.slices = threads
        self.c.threads = 1 if self.serial else threads
        self.c.stalls = 0
        # Python handles signals in the main thread only; elsewhere a check would just wait for the GIL.
        self.c.signals = threading.current_thread() is threading.main_thread()
        self._reserve_parts(max(self.c.blocks, self.c.slices))
        self._reserve(min(bs, n))
        self._reserve_gradient_parts(mode, min(bs, n))
        self._plan(mode, min(bs, n))
        self.s.stats = <double*>_ptr(self._stats)
        memset(self.s.stats, 0, (3 + 2 * self.s.n_metrics) * sizeof(double))
        memset(self.s.hist, 0, self.s.hist_size * sizeof(double))

    cdef _reserve_gradient_parts(self, int mode, Py_ssize_t rows):
        """Point `parts` of each Dense op whose training gradient is summed from per-block parts at room for
        them (NULL for the others).

        With row blocks, the gradient slice of a thread (x^T g over the whole batch) reads every other
        block's rows of x from the core that wrote them. For a layer narrower than a block is tall, each
        block's own gradient (x_block^T g_block) is the smaller thing to hand over.
        """
        cdef int i
        cdef Op* op
        parts = []
        for i in range(self.s.n_ops):
            op = &self.s.ops[i]
            op.parts = NULL
            if (mode == MODE_TRAIN and op.kind == K_DENSE and op.pw >= 0 and self.c.blocks > 1
                    and op.n_out * PARTIAL_ROWS_PER_UNIT <= rows // self.c.blocks):
                op.parts = _keep_new(parts, (self.c.blocks, (op.n_in + 1) * op.n_out), self.dtype)
        self._parts_keep = parts

    cdef Py_ssize_t _weights_per_row(self):
        """Multiply-adds of one row through every Dense layer (the matrix work of a batch, per row)."""
        cdef int i
        cdef Py_ssize_t total = 0
        for i in range(self.s.n_ops):
            if self.s.ops[i].kind == K_DENSE:
                total += self.s.ops[i].n_in * self.s.ops[i].n_out
        return total

    cdef int _plan(self, int mode, Py_ssize_t rows) except -1:
        """Fill s.stages for a call of `mode` (MODE_TRAIN, MODE_EVALUATE, MODE_PREDICT) with batches of `rows` rows.

        A Dense product runs over column slices when the layer is wider than the batch is tall (then each
        thread packs a slice of W, instead of all of it for its rows) and W is large enough to be worth it.
        In training, every Dense product with that many weights splits by depth instead: each thread
        multiplies the rows of W its parameter slice updates (`_batch._slice`), so no core writes lines of W
        that another core has just read (each such write would wait for the other core to drop its copy); a
        row stage then sums the partial outputs.
        """
        cdef int i, L = self.s.n_ops
        cdef bint training = mode == MODE_TRAIN, split = self.c.slices > 1, big, cols, depth
        cdef Op* op
        self.s.n_stages = 0
        partials = []
        for i in range(L):
            op = &self.s.ops[i]
            op.partials = NULL
            if (op.kind == K_DROPOUT or op.kind == K_NOISE) and not training:
                continue
            big = split and op.kind == K_DENSE and op.n_in * op.n_out >= MIN_SPLIT_WEIGHTS
            cols = big and op.act != A_SOFTMAX and op.n_out > rows
            depth = big and training and op.pw >= 0 and op.parts == NULL
            if i == 0 and training:
                if (op.kind == K_DENSE and not cols and not depth and op.n_out <= GATHER_DENSE_UNITS
                        and self.dtype == np.float32 and gather_dense_available()):
                    self._add_stage(S_GATHER_DENSE, 0, False)
                    continue
                self._add_stage(S_GATHER, -1, False)
            if depth:
                op.partials = _keep_new(partials, (self.c.slices - 1, rows, op.n_out), self.dtype)
                self._add_stage(S_FORWARD_DEPTH, i, True)
                self._add_stage(S_FORWARD_SUM, i, False)
            elif op.kind == K_BN and training:  # batch statistics: each thread takes a slice of the features
                self._add_stage(S_BN_FORWARD, i, True)
            else:
                self._add_stage(S_FORWARD, i, cols)
        self._partials_keep = partials
        self._add_stage(S_SCORE, -1, False)
        if not training:
            return 0
        for i in range(L - 1, self.s.first_param - 1, -1):
            op = &self.s.ops[i]
            if not (op.kind == K_BN and op.act == A_LINEAR):
                self._add_stage(S_BACK, i, False)
            if op.kind == K_BN:
                self._add_stage(S_BN_BACK, i, True)
            if op.parts != NULL:
                self._add_stage(S_PARTIAL, i, False)
            if op.kind == K_DENSE and i > self.s.first_param:
                self._add_stage(S_DX, i, split and op.n_in > rows and op.n_in * op.n_out >= MIN_SPLIT_WEIGHTS)
        return 0

    cdef int _add_stage(self, int kind, int op, bint cols) except -1:
        if self.s.n_stages >= self._stage_capacity:  # a plan longer than the array allocated for it
            raise RuntimeError(f"Network: the plan needs more than {self._stage_capacity} stages")
        cdef Stage* st = &self.s.stages[self.s.n_stages]
        st.kind, st.op, st.cols = kind, op, cols
        self.s.n_stages += 1
        return 0

    cdef _bind_optimizer(self, optimizer):
        """Read the optimizer object (`contract.optimizer.read_optimizer`) into the State: hyper-parameters,
        iterations, m_schedule and the slot arrays."""
        view = read_optimizer(optimizer, self._params, self.dtype)
        hyper = view.hyper
        h = &self.s.hyper
        h.kind = OPTIMIZERS.index(hyper.kind)
        h.lr, h.decay, h.eps, h.momentum = hyper.lr, hyper.decay, hyper.epsilon, hyper.momentum
        h.nesterov, h.amsgrad = hyper.nesterov, hyper.amsgrad
        h.rho, h.beta_1, h.beta_2, h.schedule_decay = hyper.rho, hyper.beta_1, hyper.beta_2, hyper.schedule_decay
        self.s.iterations = view.iterations
        self.s.m_schedule = view.m_schedule
        need = hyper.slot_count()
        for j, entry in enumerate(view.slots):
            for k in range(3):
                self.s.slots[3 * j + k] = _ptr(entry[k]) if k < need else NULL
        self._slots_keep = view.slots

    def _enter(self):
        """Mark the network busy for one call (its workspaces and call state are not shareable).

        Raises:
            RuntimeError: a call is already running, from another thread or from inside a hook.
        """
        if self._busy:
            raise RuntimeError("Network: a train_epoch/evaluate/predict call is already running on this "
                               "network (from another thread or from inside a hook); calls cannot overlap")
        self._busy = True

    cdef _run(self, int mode, hook, optimizer, out):
        """Run the bound call in the network dtype (`out`: the predict output array; in training and
        evaluation the hook's `predictions`, which receives each batch's output, or None).

        The parts of a batch run their GEMMs side by side, each on its own thread, so SciPy's BLAS is pinned
        to one thread per call for the whole call (hooks included: switching OpenBLAS's thread count costs
        microseconds) and unpinned however the call ends.
        """
        # Pinned whenever the plan splits the batches (also when `serial` runs the parts on one thread): a
        # GEMM that OpenBLAS split over its own threads would group the rows differently (other last bits).
        cdef int blas_before = pin_one_thread() if self.c.slices > 1 else 0
        try:
            if self._typenum == cnp.NPY_DOUBLE:
                _run(self, <double*>NULL, mode, hook, optimizer, <double*>_ptr(out))
            else:
                _run(self, <float*>NULL, mode, hook, optimizer, <float*>_ptr(out))
        finally:
            unpin(blas_before)
            # Do not keep the callbacks (and the model, a reference cycle) alive after the call.
            self._end_calls = self._end_keys = self._stop_model = self._batch_out = None

    cdef bint _has_column_stage(self):
        cdef int k
        for k in range(self.s.n_stages):
            if self.s.stages[k].cols:
                return True
        return False

    cdef bint _shares_blocks(self, hook):
        """Whether a bound predict or evaluate call runs through `_forward_shared`: no hook, several threads
        and row blocks, row stages only, and one process (distributed evaluate reduces each batch)."""
        return (hook is None and self.c.threads > 1 and self.c.blocks > 1 and not self._has_column_stage()
                and self.c.reduce.fn == NULL)

    cdef _forward_shared(self, int mode, out):
        """Run the bound predict (into `out`) or evaluate call (no hook, row stages only) through
        `_forward_shared`: give each thread a copy of the State with its own act pointer array, its own rows
        of the workspace and its own room for block histograms, and the call room for every block's loss
        and metric sums (evaluate)."""
        cdef int t, threads = self.c.threads, L = self.s.n_ops
        cdef Py_ssize_t last = self.c.n - (self.c.n_batches - 1) * self.c.bs
        # The most rows of a block: a full batch's largest block, or a last batch too small to split.
        cdef Py_ssize_t slot_rows = (self.c.bs + self.c.blocks - 1) // self.c.blocks
        if last < self.c.blocks * MIN_BLOCK_ROWS:
            slot_rows = max(slot_rows, last)
        cdef Py_ssize_t hist_size = self.s.hist_size
        cdef Py_ssize_t n_stats = (_forward_blocks_count(&self.c) * (1 + self.s.n_metrics)
                                   if mode == MODE_EVALUATE else 0)
        self._reserve(threads * slot_rows)
        cdef State* local = <State*>_malloc(threads * sizeof(State))
        cdef char** acts = <char**>_malloc(threads * (L + 1) * sizeof(char*))
        cdef double* btime = <double*>_malloc(threads * self.c.blocks * sizeof(double))
        cdef double* bhist = <double*>_malloc(threads * self.c.blocks * hist_size * sizeof(double))
        cdef double* hists = <double*>_malloc(threads * hist_size * sizeof(double))
        cdef double* block_stats = <double*>_malloc(n_stats * sizeof(double))
        cdef int blas_before = pin_one_thread()
        try:
            memset(hists, 0, threads * hist_size * sizeof(double))
            for t in range(threads):
                local[t] = self.s
                local[t].act = acts + t * (L + 1)
                local[t].act[0] = NULL
                local[t].btime = btime + t * self.c.blocks
                local[t].bhist = bhist + t * self.c.blocks * hist_size
            if self._typenum == cnp.NPY_DOUBLE:
                _forward_shared(self, <double*>NULL, mode, <double*>_ptr(out), local, self.s.act, slot_rows,
                                block_stats, hists)
            else:
                _forward_shared(self, <float*>NULL, mode, <float*>_ptr(out), local, self.s.act, slot_rows,
                                block_stats, hists)
        finally:
            unpin(blas_before)
            PyMem_Free(local)
            PyMem_Free(acts)
            PyMem_Free(btime)
            PyMem_Free(bhist)
            PyMem_Free(hists)
            PyMem_Free(block_stats)

    cdef _write_back(self, optimizer):
        optimizer.iterations = self.s.iterations
        if self.s.hyper.kind == O_NADAM:
            optimizer.m_schedule = float(self.s.m_schedule)

    def _sums(self):
        if self.c.mpi_error != 0:
            raise RuntimeError(f"distributed training: MPI_Allreduce failed with error code {self.c.mpi_error}")
        return self._stats[1 + self.s.n_metrics:].copy()

    # -- distributed training (fastfit.distributed) -----------------------------------------------------------
    def distribute(self, reducer):
        """Run train_epoch and evaluate as one rank of a data-parallel job, or (None) in one process.

        `reducer` (`fastfit.distributed.Reducer`): `rank`, `size`, and `c_entry(dtype)` giving (MPI_Allreduce
        address, whether handles are ints, communicator, datatype and MPI_SUM handles, MPI_IN_PLACE address);
        optionally `progress_address`, the address of two C long longs the loop keeps as [allreduces
        completed, 1 while in one] for the reducer's watchdog (0 or absent: none).
        Each call then walks the same `order` on every rank and runs this rank's share of each global batch;
        one allreduce per batch sums the gradients and batch values (docs/distributed.md).

        Raises:
            ValueError: an op whose training is not a sum over rows (batch normalization's batch statistics),
                or a reduce buffer larger than one MPI count can describe.
        """
        if reducer is None or reducer.size == 1:
            self.c.reduce.fn = NULL
            self.c.reduce.progress = NULL
            return
        if any(spec[0] == K_BN for spec in self._op_specs):
            raise ValueError("distributed training: BatchNormalization computes statistics over the whole batch, "
                             "which each rank holds only a share of; train it in one process (without "
                             "fastfit.distributed.init())")
        if self.s.rgrads + self.s.rtail >= 2**31:
            raise ValueError(f"distributed training: {self.s.rgrads + self.s.rtail} values to reduce per batch "
                             "exceed MPI's int count (2**31 - 1); the model is too large for one allreduce")
        fn, int_handles, comm, datatype, op, in_place = reducer.c_entry(self.dtype)
        self.c.reduce.fn = <void*><size_t>fn
        self.c.reduce.int_handles = bool(int_handles)
        self.c.reduce.comm, self.c.reduce.datatype, self.c.reduce.op = comm, datatype, op
        self.c.reduce.in_place = <void*><size_t>in_place
        self.c.reduce.rank, self.c.reduce.size = reducer.rank, reducer.size
        self.c.reduce.progress = <long long*><size_t>getattr(reducer, "progress_address", 0)

    @property
    def stages(self):
        """The plan of the last call: a list of (stage, op index or None, 'rows' or 'columns')."""
        names = {S_GATHER: "gather", S_GATHER_DENSE: "gather+forward", S_FORWARD: "forward", S_SCORE: "score", S_BACK: "backward", S_DX: "input grad",
                 S_PARTIAL: "block gradient", S_FORWARD_DEPTH: "forward by depth", S_FORWARD_SUM: "forward sum",
                 S_BN_FORWARD: "batch norm forward", S_BN_BACK: "batch norm backward"}
        return [(names[self.s.stages[k].kind], self.s.stages[k].op if self.s.stages[k].op >= 0 else None,
                 "columns" if self.s.stages[k].cols else "rows") for k in range(self.s.n_stages)]

    @property
    def threads(self):
        """Threads the last call ran its batches on (1 if it fell back to one because a core was busy)."""
        return int(self.c.threads)

    @property
    def first_nonfinite_batch(self):
        """Index (in the last call) of the first training batch whose loss was NaN or inf, or None."""
        return None if self.c.first_bad < 0 else int(self.c.first_bad)

    def train_epoch(self, x, y, sample_weight, order, batch_size, optimizer, hook):
        """Train one pass over x in the batches given by `order`.

        Arguments:
            x: (n, in_features) array; y: targets ((n, units) array, or int64 (n,) labels for the sparse
                loss); sample_weight: None or (n,) array; order: int64 array of row indices in [0, n), walked
                in batches (usually a permutation of range(n); shorter when a resumed epoch skips batches);
            batch_size: int >= 1; optimizer: the optimizer object (updated: iterations, slots, m_schedule);
            hook: None or the batch hook.

        Returns:
            float64 array [seen, loss_sum, metric_sum_1, ...].

        Raises:
            ValueError: any argument of the wrong type, dtype, layout, shape or range.
            Whatever the hook raises (weights are those of the last completed batch).
        """
        self._enter()
        try:
            n = self._bind_data(x, y, sample_weight, True)
            check_int_array(order, "order", shape=(None,))
            check_labels(order, n, "order")
            self.c.order = <int64_t*>_ptr(order)
            self.c.n = order.shape[0]  # the loop walks `order`, which may cover fewer rows than x has
            self._bind_optimizer(optimizer)
            self._bind_batches(self.c.n, batch_size, hook, MODE_TRAIN)
            try:
                self._run(MODE_TRAIN, hook, optimizer, self._batch_out)
            finally:
                self._write_back(optimizer)
                self._slots_keep = None
        finally:
            self._busy = False
        return self._sums()

    def evaluate(self, x, y, sample_weight, batch_size, hook):
        """Score x against y in row order, without dropout; returns [seen, loss_sum, metric_sums...].

        Raises:
            ValueError: as `train_epoch`. Whatever the hook raises.
        """
        self._enter()
        try:
            n = self._bind_data(x, y, sample_weight, True)
            self._bind_batches(n, batch_size, hook, MODE_EVALUATE)
            if self.dtype == np.float64:
                self.s.eval_penalty = weight_penalties(&self.s, <double*>NULL)
            else:
                self.s.eval_penalty = weight_penalties(&self.s, <float*>NULL)
            if self._shares_blocks(hook):
                self._forward_shared(MODE_EVALUATE, None)
            else:
                self._run(MODE_EVALUATE, hook, None, self._batch_out)
        finally:
            self._busy = False
        return self._sums()

    def predict(self, x, batch_size, out, hook):
        """Write the network output for x into `out` ((n, units), network dtype), in row order.

        Raises:
            ValueError: as `train_epoch`, or `out` of the wrong dtype, layout or shape.
        """
        self._enter()
        try:
            n = self._bind_data(x, None, None, False)
            if not _plain_float(out, self._typenum, n, self.s.units, True):
                out = check_float_array(out, self.dtype, "out", shape=(n, self.s.units), writeable=True)
            self._bind_batches(n, batch_size, hook, MODE_PREDICT)
            self.s.stats = <double*>_ptr(self._pstats)
            if self._shares_blocks(hook):
                self._forward_shared(MODE_PREDICT, out)
            else:
                self._run(MODE_PREDICT, hook, None, out)
        finally:
            self._busy = False


def _layer_spec(op, width):
    """The internal spec [kind, act, W, b, rate, seed, trainable, width, extra] of a normalised layer op (see
    `checks.check_layer_op`) that needs input `width` (None: any), or None for an identity. W and b are the op's
    parameter arrays (PReLU: alpha; batch normalization: gamma, beta); `extra` holds the scalars (`p`, `sub`)
    and BN's moving statistics."""
    kind = op[0]
    if kind == "activity_regularization":
        if op[1] == 0 and op[2] == 0:
            return None
        return [K_ACTREG, A_LINEAR, None, None, 0.0, 0, False, width, {"p": (op[1], op[2], 0.0), "sub": 0}]
    if kind == "relu":
        has_max = op[2] is not None
        return [K_RELU, A_LINEAR, None, None, 0.0, 0, False, width,
                {"p": (op[1], op[2] if has_max else 0.0, op[3]), "sub": int(has_max)}]
    if kind == "elu":
        return [K_ELU, A_LINEAR, None, None, 0.0, 0, False, width, {"p": (op[1], 0.0, 0.0), "sub": 0}]
    if kind == "prelu":
        return [K_PRELU, A_LINEAR, op[1], None, 0.0, 0, op[2], width,
                {"p": (0.0, 0.0, 0.0), "sub": int(op[1].shape[0] == 1)}]
    if kind == "batch_normalization":
        _, gamma, beta, mean, var, momentum, epsilon, trainable = op
        return [K_BN, A_LINEAR, gamma, beta, 0.0, 0, trainable, width,
                {"p": (momentum, epsilon, 0.0), "sub": int(trainable), "mean": mean, "var": var}]
    return [K_NOISE, A_LINEAR, None, None, op[1], op[2] & (2**64 - 1), False, width,
            {"p": (0.0, 0.0, 0.0), "sub": NOISE_OPS.index(kind)}]
