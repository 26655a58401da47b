# Loss and metric codes (the order of ENGINE_NAMES in fastfit/contract/names.py) and the batch kernels.
from cython cimport floating
from libc.stdint cimport int64_t

cdef enum:
    L_MSE = 0
    L_MAE = 1
    L_MAPE = 2
    L_MSLE = 3
    L_SQUARED_HINGE = 4
    L_HINGE = 5
    L_CATEGORICAL_HINGE = 6
    L_LOGCOSH = 7
    L_CCE = 8
    L_SCCE = 9
    L_BCE = 10
    L_KLD = 11
    L_POISSON = 12
    L_COSINE = 13
    M_BINARY_ACCURACY = 14
    M_CATEGORICAL_ACCURACY = 15
    M_SPARSE_CATEGORICAL_ACCURACY = 16
    M_TOP_K = 17
    M_SPARSE_TOP_K = 18
    L_CCE_LOGITS = 19
    L_SCCE_LOGITS = 20
    L_BCE_LOGITS = 21

cdef double loss_rows(int code, bint fused, const floating* p, const floating* y, const int64_t* labels,
                      const floating* w, Py_ssize_t rows, Py_ssize_t units, double scale,
                      floating* grad) noexcept nogil
cdef double metric_sum(int code, double param, const floating* p, const floating* y, const int64_t* labels,
                       Py_ssize_t rows, Py_ssize_t units) noexcept nogil
cdef void threshold_histogram(const floating* p, const floating* y, Py_ssize_t rows, Py_ssize_t units,
                              const double* thresholds, Py_ssize_t T, int class_id, int top_k,
                              double* hist) noexcept nogil
