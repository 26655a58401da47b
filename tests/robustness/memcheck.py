"""Run a workload under valgrind memcheck and fail on any error attributable to fastfit.

Usage (from the repository root; see docs/memory-safety.md):

    python tests/robustness/memcheck.py engine      # the Cython Network over many shapes and bad calls
    python tests/robustness/memcheck.py api         # fit, evaluate, predict, save, load on both engines
    python tests/robustness/memcheck.py properties  # the hypothesis property tests, under memcheck
    python tests/robustness/memcheck.py engine --origins   # keep CPython's noise, trace every origin

Exit status 0 when valgrind reports no invalid read/write/free anywhere and no error of any kind with a
fastfit frame in its stack or in the origin of an uninitialised value. glibc false positives are suppressed
by valgrind-libc.supp, and CPython 3.11's uninitialised-int noise by valgrind-python.supp; `--origins`
drops the latter and adds --track-origins=yes, so an uninitialised value that fastfit created and CPython
merely used would still be reported (with a fastfit frame in its origin).
"""
import os
import re
import site
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SERIOUS = re.compile(r"Invalid (read|write|free)|Mismatched free|overlap|Syscall param|Jump to the invalid|"
                     r"Process terminating")
OURS = re.compile(r"fastfit|_filewrite\.c|_loop\.c|_dense\.c|_losses\.c|_optim\.c|_activations\.c|_blas\.c")


def command(workload, log, origins):
    python = os.path.realpath(sys.executable)  # not a pyenv shim: valgrind must see the interpreter itself
    if workload == "properties":
        target = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                  os.path.join(HERE, "test_properties.py")]
    else:
        target = [python, os.path.join(HERE, "memcheck_workload.py"), workload]
    options = ["--track-origins=yes"] if origins else [f"--suppressions={os.path.join(HERE, 'valgrind-python.supp')}"]
    return ["valgrind", "--tool=memcheck", "--error-exitcode=0", "--num-callers=40",
            f"--suppressions={os.path.join(HERE, 'valgrind-libc.supp')}", f"--log-file={log}"] + options + target


def errors(log_text):
    """The error blocks of a memcheck log (each a list of lines without the ==pid== prefix)."""
    blocks, current = [], []
    for line in log_text.splitlines():
        body = re.sub(r"^==\d+== ?", "", line)
        if not body.strip():
            if current:
                blocks.append(current)
            current = []
        else:
            current.append(body)
    if current:
        blocks.append(current)
    return [b for b in blocks if b and not b[0].startswith(("Memcheck", "Copyright", "Using", "Command", "Parent",
                                                           "HEAP", "LEAK", "ERROR SUMMARY", "For lists",
                                                           "Rerun", "Use --track", "in use at exit",
                                                           "total heap", "definitely", "indirectly",
                                                           "possibly", "still reachable", "suppressed",
                                                           "of which", "newarray"))]


def main(argv):
    origins = "--origins" in argv
    names = [a for a in argv[1:] if not a.startswith("--")]
    workload = names[0] if names else "engine"
    log = os.path.join("/tmp", f"fastfit-memcheck-{workload}{'-origins' if origins else ''}.log")
    # The child runs the interpreter binary itself (not a venv's link to it), so it gets this environment's
    # packages (h5py, ...) through PYTHONPATH.
    env = dict(os.environ, PYTHONMALLOC="malloc", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([ROOT] + site.getsitepackages()))
    result = subprocess.run(command(workload, log, origins), cwd=ROOT, env=env)
    text = open(log).read()
    found = errors(text)
    serious = [b for b in found if SERIOUS.search(b[0])]
    uninitialised = [b for b in found if "uninitialised" in b[0]]
    ours = [b for b in found if any(OURS.search(line) for line in b)]
    summary = re.findall(r"ERROR SUMMARY: .*", text)
    print(f"workload {workload!r}: exit {result.returncode}; {summary[-1] if summary else 'no summary'}")
    print(f"  invalid accesses anywhere: {len(serious)}; errors with a fastfit frame (site or origin): "
          f"{len(ours)}; other uninitialised-value reports: {len(uninitialised) - len(ours)}; log: {log}")
    for block in (serious + ours)[:5]:
        print("\n".join("    " + line for line in block[:20]))
    return 1 if serious or ours or result.returncode else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
