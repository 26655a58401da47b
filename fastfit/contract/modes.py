"""The call modes of an engine pass and the phases of its batch hook (docs/architecture.md, "Hooks").

The Cython engine uses the same values through the `cdef enum` twin `src_cython/fastfit/_ext/_modes.pxd`
(`tests/contract/test_modes.py` checks that they agree).
"""
from enum import IntEnum


class Mode(IntEnum):
    """What an engine pass does: train (an epoch with updates), evaluate (score) or predict (outputs)."""
    TRAIN = 0
    EVALUATE = 1
    PREDICT = 2


class Phase(IntEnum):
    """The first argument of a batch hook call: before a batch runs, or after it."""
    BATCH_BEGIN = 0
    BATCH_END = 1
