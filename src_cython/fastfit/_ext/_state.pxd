# The state shared by the loops of `_loop` and the GIL-free batch kernels of `_batch`: the compiled op
# table, workspaces and optimizer state (State) and the arguments of the current call (Call).
from libc.stdint cimport int64_t, uint64_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from fastfit._ext._optim cimport Hyper, Step
from fastfit._ext._allreduce cimport Reduce

cdef enum:
    K_DENSE = 0
    K_ACT = 1
    K_DROPOUT = 2
    K_ACTREG = 3            # identity that adds l1 * sum|x| + l2 * sum x**2 of its input to the loss
    K_RELU = 4              # Keras 2.2 K.relu(x, slope, max_value, threshold) (LeakyReLU, ThresholdedReLU, ReLU)
    K_ELU = 5               # ELU with its alpha
    K_PRELU = 6             # PReLU: trained alpha per feature (or shared)
    K_BN = 7                # batch normalization (+ a fused element-wise activation)
    K_NOISE = 8             # GaussianNoise, GaussianDropout, AlphaDropout (training only, like dropout)

cdef enum:
    MIN_BLOCK_ROWS = 16     # a row block of a batch needs this many rows to be worth a thread of its own
    MIN_SPLIT_WEIGHTS = 16384   # a layer's products are split by columns only if W has this many entries

# The stages of a batch, in order (see _batch.pyx); each runs over row blocks or over column slices.
cdef enum:
    S_GATHER = 0            # copy the batch's shuffled rows into the batch buffers
    S_FORWARD = 1           # forward pass of one op
    S_SCORE = 2             # loss, metrics and loss gradient; or (predict) copy the output
    S_BACK = 3              # row-wise backward of one op: activation derivative, dropout mask
    S_DX = 4                # input gradient g W^T of one Dense op
    S_GATHER_DENSE = 5      # S_GATHER and the first Dense op's forward in one pass (float32, narrow layer)
    S_PARTIAL = 6           # weight and bias gradient of one narrow Dense op over the block's rows only
    S_FORWARD_DEPTH = 7     # (column slices) one Dense op's product over a slice of its inputs: x[:, lo:hi] @
                            # W[lo:hi], the rows of W its thread updates, into one partial output per slice
    S_FORWARD_SUM = 8       # the sum of those partial outputs, then bias and activation
    S_BN_FORWARD = 9        # (column slices) batch normalization in training: batch statistics of a slice of
                            # the features over all rows, moving statistics, output
    S_BN_BACK = 10          # (column slices) batch normalization backward: gamma/beta gradients, input gradient

cdef enum:
    PARTIAL_ROWS_PER_UNIT = 2   # a Dense op's gradient is summed from per-block parts when the blocks have
                                # this many rows per unit of the layer (the parts are then the smaller read)

cdef enum:
    GATHER_DENSE_UNITS = 16 # the widest first Dense layer S_GATHER_DENSE computes


cdef struct Stage:
    int kind
    int op
    bint cols               # over column slices of the layer (one per thread) instead of row blocks


cdef struct Op:
    int kind
    int act                 # activation code (Dense: the activation fused into it)
    Py_ssize_t n_in, n_out
    char* w                 # Dense parameters and their gradients (b, gb NULL without bias)
    char* b
    char* gw
    char* gb
    double rate             # Dropout; K_NOISE: stddev or rate
    uint64_t seed
    char* mask              # Dropout: 0 or 1/(1-rate) per element of the batch matrix; K_NOISE: the factor the
                            # backward pass multiplies by
    int pw, pb              # Dense: indices of W and b in State.params (pb -1 without bias); K_PRELU: alpha
                            # (pw); K_BN: gamma (pw), beta (pb); -1 when absent or frozen
    double p0, p1, p2       # K_RELU: slope, max_value, threshold; K_ELU: alpha; K_ACTREG: l1, l2;
                            # K_BN: momentum, epsilon
    int sub                 # K_RELU: has a max_value; K_PRELU: one shared alpha; K_BN: updates its moving
                            # statistics (not frozen); K_NOISE: its kind (N_* of _layers.pxd)
    char* mm                # K_BN: moving mean and variance (w: gamma, b: beta, gw/gb: their gradients; any
    char* mv                # of the four NULL when absent or frozen)
    double* bstat           # K_BN: batch mean, 1/sqrt(var + eps), then the dbeta and dgamma sums (4 x n_out)
    char* parts             # Dense, S_PARTIAL planned: per row block, its gradient of W then of b (or NULL)
    char* partials          # Dense, S_FORWARD_DEPTH planned: the partial outputs of slices 1.. (slice 0 writes
                            # into the output buffer), each batch rows x n_out


cdef struct Penalty:
    char* arr               # a parameter array (of any op)
    Py_ssize_t size
    double l1, l2           # adds l1 * sum|a| + l2 * sum a**2 to the loss
    int param               # its index in State.params (its gradient gets the penalty's), -1 when frozen


cdef struct Constraint:
    int kind                # C_* of _layers.pxd
    char* arr               # a trained parameter array, seen as rows x cols (1-D: 1 x size, axis 1)
    Py_ssize_t rows, cols
    int axis                # 0: one norm per column (over the rows), 1: one per row
    double max_value, min_value, rate


cdef struct Confusion:
    # One threshold histogram (fastfit._reference.metrics.threshold_histogram): `2 * (T + 1) + 1` doubles at
    # `offset` of the histograms: positives per bucket, negatives per bucket, predictions outside [0, 1].
    const double* thresholds    # sorted, T of them
    Py_ssize_t T
    int class_id                # -1: every column
    int top_k                   # 0: every prediction
    Py_ssize_t offset


cdef struct State:
    Op* ops
    int n_ops
    int first_param         # index of the first op with parameters (n_ops if none)
    Py_ssize_t n_in, units
    int loss
    bint fused              # last activation and loss share their gradient
    int* metrics
    double* mparams         # per metric: the threshold of binary accuracy (NaN: round), the k of top-k
    int n_metrics
    Confusion* confusion    # the threshold histograms accumulated over the call (`hist`)
    int n_confusion
    Py_ssize_t hist_size    # doubles of all histograms together
    double* hist            # the call's histograms (zeroed when a call binds)
    double* bhist           # per row block: that block's histograms of the current batch
    int n_params
    char** params           # per parameter array: data, gradient, size, 3 slot pointers
    char** pgrads
    Py_ssize_t* psizes
    char** slots
    int* ppen               # per parameter array: index of its penalty in `penalties`, or -1
    Penalty* penalties
    int n_penalties
    double* spen            # per parameter slice: the penalty of its slice of the parameters this batch
    double eval_penalty     # evaluate: the weight penalties (the weights do not change during the call)
    Constraint* constraints # applied after each update, in order
    int n_constraints
    bint activity           # some K_ACTREG op adds to the loss
    Stage* stages           # the stages of the current call (a plan for its mode and batch size)
    int n_stages
    int n_parts             # row blocks or column slices the per-part arrays below have room for
    double* bstats          # per row block: [loss share, metric sums...]
    double* btime           # per block or slice: seconds its work took (did the parts really overlap?)
    char** act              # act[i + 1]: output buffer of op i (capacity x width)
    char** grad             # grad[i]: d loss / d input of op i (shared by ops that keep the width)
    char* xbuf              # gathered batch: x rows, y rows or labels, sample weights
    char* ybuf
    int64_t* lbuf
    char* wbuf
    double* stats           # [batch loss, batch metrics..., seen, loss sum, metric sums...]
    Hyper hyper
    Step step
    long long iterations
    double m_schedule
    # Distributed training (fastfit.distributed): one contiguous buffer `rbuf` of the network dtype holds every
    # parameter gradient (`pgrads` are views into it, `rgrads` elements in all) followed by the batch's reduced
    # values (`rtail` elements: the loss share, the metric sums, the threshold histograms); one allreduce per
    # batch sums it over the ranks.
    char* rbuf
    Py_ssize_t rgrads, rtail
    Py_ssize_t row0         # the place in the global batch of this rank's first row: dropout and noise draw
                            # element e of the global batch matrix (0 in one process)


cdef struct Call:
    char* x
    char* y
    int64_t* labels
    char* w
    int64_t* order
    Py_ssize_t n, bs, n_batches
    bint begin, end
    double interval
    int blocks                  # row blocks per full batch (1: no split); fixes the arithmetic
    int slices                  # parameter slices of the weight gradients and update; fixes the arithmetic
    int threads                 # threads that run the blocks (1: one after the other, same result)
    int stalls                  # consecutive batches whose blocks did not overlap; at 4, threads = 1
    bint signals                # check for Ctrl-C now and then (main thread only)
    Py_ssize_t first_bad        # first training batch whose loss was NaN/inf, or -1
    Reduce reduce               # distributed training: the allreduce of each batch (fn NULL: one process)
    Py_ssize_t gstart, gsize    # the current global batch: its first position in `order` and its rows (this
                                # rank runs a contiguous share of them; in one process all of them)
    int mpi_error               # the error code of a failed allreduce (0: none)


cdef inline double now() noexcept nogil:
    """Monotonic time in seconds."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + 1e-9 * ts.tv_nsec
