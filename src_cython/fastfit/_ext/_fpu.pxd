# Flush-to-zero / denormals-are-zero for the GIL-free part of a call. Optimizer slots of parameters whose
# gradient is 0 (dead relu units) decay geometrically (m *= beta_1) into the denormal range after a few hundred
# steps, where arithmetic on them is many times slower than on normal numbers. Values below 1.2e-38 (float32) are treated as 0 instead. The mode is per thread: `_loop`
# sets it on the calling thread (restored around every hook call and at the end), and every task `_batch`
# runs on a pool thread sets and restores it too (pool threads may come from other code using OpenMP, which
# does not set the mode).
cdef extern from *:
    """
    #if defined(__SSE2__) || defined(_M_X64) || defined(_M_AMD64)
    #include <xmmintrin.h>
    static unsigned long long fastfit_flush_denormals(void) {
        unsigned int old = _mm_getcsr();
        _mm_setcsr(old | 0x8040u);
        return old;
    }
    static void fastfit_restore_fp(unsigned long long old) { _mm_setcsr((unsigned int)old); }
    #elif defined(__aarch64__)
    static unsigned long long fastfit_flush_denormals(void) {
        unsigned long long old;
        __asm__ __volatile__("mrs %0, fpcr" : "=r"(old));
        __asm__ __volatile__("msr fpcr, %0" : : "r"(old | (1ull << 24)));
        return old;
    }
    static void fastfit_restore_fp(unsigned long long old) { __asm__ __volatile__("msr fpcr, %0" : : "r"(old)); }
    #else
    static unsigned long long fastfit_flush_denormals(void) { return 0; }
    static void fastfit_restore_fp(unsigned long long old) { (void)old; }
    #endif
    """
    unsigned long long fastfit_flush_denormals() noexcept nogil
    void fastfit_restore_fp(unsigned long long old) noexcept nogil

