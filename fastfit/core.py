"""Which compute core a model runs on: the Cython core `fastfit._ext._loop` or its NumPy reference twin
`fastfit._reference.loop` (they keep one contract, `fastfit.contract`).

Users choose with `compile(engine='cython'|'python')` or `$FASTFIT_ENGINE`; those public spellings stay
"engine" (Keras users type them), and `Model.compile` hands them to `resolve_core`. Selecting a core imports
the core's package, so this module is not part of `fastfit.contract`, which imports nothing of fastfit.
"""
from __future__ import annotations

import os
import warnings

CORES = ("cython", "python")
_CORE_VARIABLE = "FASTFIT_ENGINE"  # the public name of the default's environment variable


def resolve_core(engine: str | None) -> str:
    """Return 'cython' or 'python' for `compile(engine=...)`, defaulting to $FASTFIT_ENGINE, else 'cython'
    ('python', with a RuntimeWarning, when the Cython core is not built).

    Raises:
        ValueError: an unknown core name (the message names `engine` or `FASTFIT_ENGINE`, what the user set).
    """
    source = "engine"
    if engine is None:
        engine, source = os.environ.get(_CORE_VARIABLE) or "cython", _CORE_VARIABLE
    if engine not in CORES:
        raise ValueError(f"`{source}` must be one of {list(CORES)}, got {engine!r}")
    if engine == "cython" and compiled_core() is None:
        warnings.warn("fastfit's compiled extensions are not built; using the NumPy reference engine "
                      "(reinstall with `pip install .` to build them)", RuntimeWarning, stacklevel=3)
        engine = "python"
    return engine


def compiled_core() -> type | None:
    """The Cython `Network` class, or None when the extensions are not built."""
    try:
        from fastfit._ext._loop import Network
    except ImportError:
        return None
    return Network


def core_class(core: str) -> type | None:
    """The `Network` class of the core named `core` ('cython' or 'python')."""
    if core == "cython":
        return compiled_core()
    from fastfit._reference.loop import Network
    return Network
