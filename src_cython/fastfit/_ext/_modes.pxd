# The call modes and hook phases of fastfit/contract/modes.py (`Mode`, `Phase`) for the Cython engine; the
# values must agree (tests/contract/test_modes.py).

cdef enum:
    MODE_TRAIN = 0
    MODE_EVALUATE = 1
    MODE_PREDICT = 2

cdef enum:
    PHASE_BATCH_BEGIN = 0
    PHASE_BATCH_END = 1
