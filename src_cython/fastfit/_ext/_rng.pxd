# Counter-based dropout RNG shared by the engines (docs/architecture.md, "Dropout RNG"): the draw for one
# element depends only on (seed, optimizer step, element index), so resumed runs draw the same masks.
from libc.stdint cimport uint64_t

cdef inline uint64_t splitmix64(uint64_t z) noexcept nogil:
    z = z + <uint64_t>0x9E3779B97F4A7C15ULL
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline uint64_t dropout_base(uint64_t seed, uint64_t step) noexcept nogil:
    """Counter offset of element 0 for this (seed, step); element e uses splitmix64(base + e)."""
    return seed * <uint64_t>0x9E3779B97F4A7C15ULL + step * <uint64_t>0xBF58476D1CE4E5B9ULL


cdef inline double uniform(uint64_t base, uint64_t e) noexcept nogil:
    """Uniform draw in [0, 1) with 53 random bits."""
    return <double>(splitmix64(base + e) >> 11) * (1.0 / 9007199254740992.0)
