# cython: cdivision=True
"""The first Dense layer of a shuffled float32 batch, read straight from the rows of x (x86-64, AVX2 + FMA).

A shuffled batch is usually copied row by row into a buffer (a pass that only waits for memory) before its
first GEMM. For a narrow layer (at most 16 units: the seed model's softmax regression) this kernel instead
computes x[order[r]] @ W while it reads each row from memory, four rows at a time, and copies the row into
the batch buffer (which the weight gradient needs) once it is in cache. The arithmetic then overlaps the
memory reads. Each output row is the same sequence of FMAs whichever group of four it falls in, so results do
not depend on how a batch is split over threads. `_batch` uses this module only on CPUs with AVX2 and FMA.
"""
from libc.stdint cimport int64_t

cdef extern from *:
    """
    #include <immintrin.h>
    #include <stdint.h>
    #include <string.h>

    /* Accumulate row s (columns 0..7 in *lo, 8..15 in *hi) over k0 <= k < k1. */
    #define FASTFIT_ROW_STEP(s, lo, hi, w0, w1, k) do { \\
        __m256 v_ = _mm256_broadcast_ss((s) + (k)); \\
        lo = _mm256_fmadd_ps(v_, w0, lo); hi = _mm256_fmadd_ps(v_, w1, hi); } while (0)

    static void fastfit_gather_dense16(const float* x, const int64_t* order, Py_ssize_t rows, Py_ssize_t n_in,
                                       const float* w, Py_ssize_t n_out, float* out, float* xcopy) {
        int32_t lanes[16];
        int j;
        Py_ssize_t r = 0, k, k0, kend;
        for (j = 0; j < 16; j++) lanes[j] = j < n_out ? -1 : 0;
        const __m256i m0 = _mm256_loadu_si256((const __m256i*)lanes);
        const __m256i m1 = _mm256_loadu_si256((const __m256i*)(lanes + 8));
        for (; r + 4 <= rows; r += 4) {
            const float* s0 = x + order[r] * n_in;
            const float* s1 = x + order[r + 1] * n_in;
            const float* s2 = x + order[r + 2] * n_in;
            const float* s3 = x + order[r + 3] * n_in;
            /* The next group's rows, fetched one cache line per row every 16 steps of this one. */
            const Py_ssize_t nr = r + 8 <= rows ? r + 4 : r;
            const float* p0 = x + order[nr] * n_in;
            const float* p1 = x + order[nr + 1] * n_in;
            const float* p2 = x + order[nr + 2] * n_in;
            const float* p3 = x + order[nr + 3] * n_in;
            __m256 a0 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps();
            __m256 a1 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
            __m256 a2 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps();
            __m256 a3 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
            for (k0 = 0; k0 < n_in; k0 += 16) {
                _mm_prefetch((const char*)(p0 + k0), _MM_HINT_T0);
                _mm_prefetch((const char*)(p1 + k0), _MM_HINT_T0);
                _mm_prefetch((const char*)(p2 + k0), _MM_HINT_T0);
                _mm_prefetch((const char*)(p3 + k0), _MM_HINT_T0);
                kend = k0 + 16 < n_in ? k0 + 16 : n_in;
                for (k = k0; k < kend; k++) {
                    const __m256 w0 = _mm256_maskload_ps(w + k * n_out, m0);
                    const __m256 w1 = _mm256_maskload_ps(w + k * n_out + 8, m1);
                    FASTFIT_ROW_STEP(s0, a0, b0, w0, w1, k);
                    FASTFIT_ROW_STEP(s1, a1, b1, w0, w1, k);
                    FASTFIT_ROW_STEP(s2, a2, b2, w0, w1, k);
                    FASTFIT_ROW_STEP(s3, a3, b3, w0, w1, k);
                }
            }
            _mm256_maskstore_ps(out + r * n_out, m0, a0);
            _mm256_maskstore_ps(out + r * n_out + 8, m1, b0);
            _mm256_maskstore_ps(out + (r + 1) * n_out, m0, a1);
            _mm256_maskstore_ps(out + (r + 1) * n_out + 8, m1, b1);
            _mm256_maskstore_ps(out + (r + 2) * n_out, m0, a2);
            _mm256_maskstore_ps(out + (r + 2) * n_out + 8, m1, b2);
            _mm256_maskstore_ps(out + (r + 3) * n_out, m0, a3);
            _mm256_maskstore_ps(out + (r + 3) * n_out + 8, m1, b3);
            memcpy(xcopy + r * n_in, s0, n_in * sizeof(float));
            memcpy(xcopy + (r + 1) * n_in, s1, n_in * sizeof(float));
            memcpy(xcopy + (r + 2) * n_in, s2, n_in * sizeof(float));
            memcpy(xcopy + (r + 3) * n_in, s3, n_in * sizeof(float));
        }
        for (; r < rows; r++) {  /* the same FMAs, one row at a time */
            const float* s0 = x + order[r] * n_in;
            __m256 a0 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps();
            for (k = 0; k < n_in; k++) {
                const __m256 w0 = _mm256_maskload_ps(w + k * n_out, m0);
                const __m256 w1 = _mm256_maskload_ps(w + k * n_out + 8, m1);
                FASTFIT_ROW_STEP(s0, a0, b0, w0, w1, k);
            }
            _mm256_maskstore_ps(out + r * n_out, m0, a0);
            _mm256_maskstore_ps(out + r * n_out + 8, m1, b0);
            memcpy(xcopy + r * n_in, s0, n_in * sizeof(float));
        }
    }
    """
    void fastfit_gather_dense16(const float* x, const int64_t* order, Py_ssize_t rows, Py_ssize_t n_in,
                                const float* w, Py_ssize_t n_out, float* out, float* xcopy) noexcept nogil


def address():
    """Return the address of the kernel for `_batch`'s dispatch (see `_batch.GatherDense`)."""
    return <size_t>&fastfit_gather_dense16
