"""The compiled (Cython) training engine. The modules are built from `src_cython/fastfit/_ext/`.

Use `available()` to learn whether the extensions were built and import.
"""


def available():
    """Return True when the compiled engine imports (`fastfit._ext._loop.Network` is usable)."""
    try:
        from fastfit._ext import _loop  # noqa: F401
    except ImportError:
        return False
    return True
