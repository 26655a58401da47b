"""The call modes and hook phases of `fastfit.contract.modes` agree with their Cython twin (`_modes.pxd`)."""
import numpy as np
import pytest

from fastfit.contract.modes import Mode, Phase
from fastfit.core import compiled_core, core_class


def test_values_are_the_contract():
    assert [(m.name, int(m)) for m in Mode] == [("TRAIN", 0), ("EVALUATE", 1), ("PREDICT", 2)]
    assert [(p.name, int(p)) for p in Phase] == [("BATCH_BEGIN", 0), ("BATCH_END", 1)]


@pytest.mark.skipif(compiled_core() is None, reason="the compiled extensions are not built")
def test_cython_enums_agree():
    from fastfit._ext import _loop

    assert _loop.MODE_VALUES == {m.name: int(m) for m in Mode}
    assert _loop.PHASE_VALUES == {p.name: int(p) for p in Phase}


def test_hooks_get_the_phases(core):
    """Both engines call the hook with Phase.BATCH_BEGIN before a batch and Phase.BATCH_END after it."""
    Network = core_class(core)
    W, b = np.full((2, 1), 0.5, np.float32), np.zeros(1, np.float32)
    net = Network([("dense", W, b)], "mean_squared_error", [], np.float32)
    calls = []

    class Hook:
        batch_begin, batch_end, end_interval = True, True, 0.0

        def __call__(self, phase, batch, size, stats):
            calls.append((phase, batch))

    x, y = np.ones((3, 2), np.float32), np.ones((3, 1), np.float32)
    net.evaluate(x, y, None, 2, Hook())
    assert calls == [(Phase.BATCH_BEGIN, 0), (Phase.BATCH_END, 0), (Phase.BATCH_BEGIN, 1), (Phase.BATCH_END, 1)]
