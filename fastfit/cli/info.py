"""`fastfit info`: versions, the BLAS fastfit computes with, and whether the compiled engine imports."""
import importlib
import os
import pkgutil
import platform
import sys

# every module of the compiled engine must import; `_loop` is the one the engine selection checks
REQUIRED_EXTENSION = "_loop"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "FASTFIT_ENGINE")


def add_arguments(parser):
    """`info` takes no options."""


def _version(module_name):
    try:
        return importlib.import_module(module_name).__version__
    except ImportError:
        return "not installed"


def _blas_from_threadpoolctl():
    """One line per BLAS library loaded in this process, or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    lines = []
    for pool in threadpool_info():
        if pool.get("user_api") != "blas":
            continue
        owner = "scipy" if "scipy" in os.path.basename(os.path.dirname(pool["filepath"])) else (
            "numpy" if "numpy" in pool["filepath"] else "other")
        lines.append(f"{pool['internal_api']} {pool.get('version')} ({owner}), {pool['num_threads']} threads, "
                     f"{pool.get('architecture') or 'unknown'} kernels: {pool['filepath']}")
    return lines


def _blas_from_build_config(module):
    """The BLAS a package was built against, from its `show_config(mode='dicts')` (numpy >= 1.25)."""
    try:
        config = module.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
    except (TypeError, KeyError, AttributeError):
        return "unknown (needs numpy >= 1.25 / scipy >= 1.11 to report it)"
    return f"{blas.get('name')} {blas.get('version')}"


def compiled_modules():
    """`(names found, [failure messages])` for the compiled modules shipped in `fastfit/_ext/`."""
    import fastfit._ext

    names = sorted({module.name for module in pkgutil.iter_modules(fastfit._ext.__path__)}
                   | {REQUIRED_EXTENSION})
    failed = []
    for name in names:
        try:
            importlib.import_module(f"fastfit._ext.{name}")
        except ImportError as exc:
            failed.append(f"{name} ({exc})")
    return names, failed


def collect():
    """Everything `info` prints, as a list of `(label, value)` pairs."""
    import numpy
    import scipy
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS so threadpoolctl can see it)

    import fastfit
    from fastfit.core import resolve_core

    rows = [("fastfit", f"{fastfit.__version__} ({os.path.dirname(fastfit.__file__)})"),
            ("python", f"{platform.python_version()} ({sys.executable})"),
            ("platform", f"{platform.platform()}, {os.cpu_count()} CPUs"),
            ("numpy", numpy.__version__), ("scipy", scipy.__version__), ("h5py", _version("h5py")),
            ("matplotlib (plots)", _version("matplotlib"))]
    names, failed = compiled_modules()
    rows.append(("compiled extensions", "all import: " + ", ".join(names) if names and not failed
                 else "NOT available: " + ("; ".join(failed) or "no compiled module found (not built)")))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows.append(("default engine", resolve_core(None)))
    rows.append(("BLAS used by fastfit", "scipy's: " + _blas_from_build_config(scipy)))
    pools = _blas_from_threadpoolctl()
    if pools is None:
        rows.append(("BLAS threads", "unknown: pip install threadpoolctl to list the loaded BLAS libraries"))
    else:
        rows.extend(("BLAS loaded", line) for line in pools)
    rows.append(("numpy BLAS", _blas_from_build_config(numpy)))
    for variable in THREAD_VARIABLES:
        if variable in os.environ:
            rows.append((variable, os.environ[variable]))
    return rows


def run(args, say=print):
    rows = collect()
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        say(f"{label:<{width}}  {value}")
    return rows
