"""What the numbers were measured on: CPU, cores, library versions, BLAS builds, fastfit commit."""
import datetime
import importlib
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARIES = ("numpy", "scipy", "fastfit", "torch", "keras", "sklearn", "h5py", "threadpoolctl", "psutil")


def cpu_model():
    """Returns the CPU model name from /proc/cpuinfo (or `platform.processor()` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions(names=LIBRARIES):
    """Returns `{name: version}` for the importable libraries among `names` (missing ones are left out)."""
    found = {}
    for name in names:
        try:
            found[name] = getattr(importlib.import_module(name), "__version__", "?")
        except Exception:  # noqa: BLE001 - missing or broken means "not there" here
            continue
    return found


def blas_info():
    """Returns the BLAS/OpenMP libraries loaded in this process (threadpoolctl), as small dicts."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed; BLAS unknown"}]
    keep = ("user_api", "internal_api", "version", "num_threads", "architecture", "threading_layer")
    return [{**{k: i.get(k) for k in keep}, "library": os.path.basename(i.get("filepath", ""))}
            for i in threadpool_info()]


def git_commit():
    """Returns `(commit, dirty)` of the fastfit checkout, or `('unknown', None)` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        return commit or "unknown", bool(status)
    except (OSError, subprocess.SubprocessError):
        return "unknown", None


def describe():
    """Returns the machine description stored in the JSON and printed above the table."""
    commit, dirty = git_commit()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions(),
        "keras_backend": os.environ.get("KERAS_BACKEND", "torch") if "keras" in sys.modules else None,
        "blas": blas_info(),
        "fastfit_commit": commit,
        "fastfit_dirty": dirty,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def describe_with_imports(engines=()):
    """Worker side: import the engines' libraries first, so versions and BLAS builds are all listed."""
    modules = {"fastfit": "fastfit", "fastfit-ref": "fastfit", "torch": "torch", "keras": "keras",
               "sklearn": "sklearn.neural_network"}
    for name in engines:
        try:
            importlib.import_module(modules[name])
        except Exception:  # noqa: BLE001 - reported by the throughput section already
            pass
    import scipy.linalg.blas  # noqa: F401 - the BLAS fastfit uses
    return describe()
