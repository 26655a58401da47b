"""Command line of the benchmark suite: `python -m benchmarks` or `python benchmarks/run.py`.

Runs the sections in one go (throughput with the GEMM ceiling and per-step overhead, inference, callback
costs, GIL, memory, checkpoint, streaming from disk, data-parallel training on MPI), prints one report and
optionally writes everything to JSON.
"""
import argparse
import json
import os
import sys
import time

if __name__ == "__main__" and not __package__:      # `python benchmarks/run.py`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import report                          # noqa: E402
from benchmarks.engines import ALL_ENGINES, availability  # noqa: E402
from benchmarks.isolate import Worker, WorkerError, call_once  # noqa: E402
from benchmarks.throughput import Throughput           # noqa: E402
from benchmarks.workloads import FULL_SAMPLES, QUICK_SAMPLES, WORKLOADS  # noqa: E402

SECTIONS = ("throughput", "inference", "callbacks", "gil", "memory", "checkpoint", "streaming", "distributed")
# streaming writes a 4.4 GB file and reads it cold, distributed needs mpiexec (mpi4py + an MPI): they run
# when asked for (`--sections streaming,distributed`)
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s not in ("streaming", "distributed"))


def _csv(choices, what):
    def parse(text):
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"{what} must be a comma-separated list of {', '.join(choices)}; got {text!r}")
        return items
    return parse


def parse_args(argv=None):
    """Parses the command line (see `--help`)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", type=_csv(tuple(WORKLOADS), "--workloads"), default=list(WORKLOADS),
                   help="comma list of " + ", ".join(WORKLOADS) + " (default: all)")
    p.add_argument("--engines", type=_csv(ALL_ENGINES, "--engines"), default=list(ALL_ENGINES),
                   help="comma list of " + ", ".join(ALL_ENGINES) + " (default: all installed)")
    p.add_argument("--sections", type=_csv(SECTIONS, "--sections"), default=list(DEFAULT_SECTIONS),
                   help="comma list of " + ", ".join(SECTIONS) + " (default: all but streaming and distributed)")
    p.add_argument("--repeats", type=int, default=None, help="timed epochs per engine (default 3, >= 1)")
    p.add_argument("--samples", type=int, default=None, help=f"rows of data (default {FULL_SAMPLES})")
    p.add_argument("--gil-samples", type=int, default=None, help="rows for the GIL benchmark (default 30000)")
    p.add_argument("--fastfit-blas-threads", type=int, default=None,
                   help="run the fastfit engines' workers with OPENBLAS_NUM_THREADS=N (default: BLAS default)")
    p.add_argument("--stream-samples", type=int, default=None,
                   help="rows of the on-disk data set of the streaming memory bound (default 1400000: 4.4 GB)")
    p.add_argument("--stream-buffer-mb", type=int, default=None, help="buffer_size of that fit in MiB (default 256)")
    p.add_argument("--stream-dir", default=None, help="folder for the streaming data files (default: the temp dir)")
    p.add_argument("--quick", action="store_true",
                   help=f"tiny sizes ({QUICK_SAMPLES} rows), short timings: checks that everything runs")
    p.add_argument("--json", metavar="PATH", help="also write all results to PATH as JSON")
    args = p.parse_args(argv)
    for name in ("repeats", "samples", "gil_samples", "fastfit_blas_threads", "stream_samples", "stream_buffer_mb"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive int, got {value}")
    quick = args.quick
    args.repeats = args.repeats or (1 if quick else 3)
    args.samples = args.samples or (QUICK_SAMPLES if quick else FULL_SAMPLES)
    args.gil_samples = args.gil_samples or (QUICK_SAMPLES if quick else 30000)
    args.stream_samples = args.stream_samples or (4096 if quick else 1400000)
    args.stream_buffer_mb = args.stream_buffer_mb or (1 if quick else 256)
    args.gemm_budget = 0.002 if quick else 0.05
    args.settle = 0.15 if quick else 0.2
    return args


def _section(name, log, fn):
    """Runs one section; a failure becomes `{'error': ...}` so the other sections still run."""
    log(f"[{name}]")
    try:
        return fn()
    except (WorkerError, OSError) as exc:
        log(f"  failed: {exc}")
        return {"error": str(exc)}


def _save_partial(args, results):
    """Writes what is measured so far to `--json` (a long run stopped midway still leaves its numbers)."""
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({**results, "partial": True}, fh, indent=1)


def run(args, log=print):
    """Runs the selected sections.

    Arguments:
        args: the namespace from `parse_args`.
        log: function for progress lines.

    Returns:
        the result dict (what `--json` writes).
    """
    engines = {}
    for name in args.engines:
        ok, note = availability(name)
        engines[name] = {"available": ok, "note": note}
    ready = [n for n in args.engines if engines[n]["available"]]
    have_fastfit = engines.get("fastfit", {}).get("available") or availability("fastfit")[0]
    ff_engine = "cython" if have_fastfit else "python"
    results = {"meta": {"command": " ".join(["python -m benchmarks", *sys.argv[1:]]), "quick": args.quick,
                        "samples": args.samples, "repeats": args.repeats, "sections": args.sections,
                        "fastfit_blas_threads": args.fastfit_blas_threads},
               "engines": engines, "workloads": []}
    t0 = time.perf_counter()
    if "throughput" in args.sections:
        log("[throughput]")
        env = {}
        if args.fastfit_blas_threads:
            env = {e: {"OPENBLAS_NUM_THREADS": args.fastfit_blas_threads} for e in ("fastfit", "fastfit-ref")}
        with Throughput(ready, args.samples, args.repeats, args.gemm_budget, args.settle, log=log,
                        worker_env=env) as bench:
            bench.preload()
            for name in args.workloads:
                results["workloads"].append(bench.run(WORKLOADS[name]))
                _save_partial(args, results)
    if "inference" in args.sections:
        peers = [e for e in ("fastfit", "torch", "keras") if e in ready]
        results["inference"] = {e: _section(f"inference {e}", log, lambda e=e: call_once(
            "inference:run", engine=e, samples=args.samples, repeats=args.repeats, quick=args.quick))
            for e in peers}
        _save_partial(args, results)
    fastfit_ok = availability("fastfit-ref")[0]
    if fastfit_ok and "callbacks" in args.sections:
        results["callbacks"] = _section("callbacks", log, lambda: call_once(
            "callbacks_cost:run", samples=args.samples, repeats=max(args.repeats, 1 if args.quick else 10),
            engine=ff_engine))
    if fastfit_ok and "gil" in args.sections:
        from benchmarks.gil import ONE_THREAD_ENV
        engines_gil = [ff_engine] if args.quick or ff_engine == "python" else ["cython", "python"]
        results["gil"] = [_section(f"gil {e}", log, lambda e=e: call_once(
            "gil:run", env=ONE_THREAD_ENV, samples=args.gil_samples, repeats=1 if args.quick else 3, engine=e))
            for e in engines_gil]
    if fastfit_ok and "memory" in args.sections:
        results["memory"] = _section("memory", log, lambda: call_once(
            "memory:run", samples=args.samples, engine=ff_engine))
    if fastfit_ok and "checkpoint" in args.sections:
        results["checkpoint"] = _section("checkpoint", log, lambda: call_once(
            "checkpoint:run", repeats=3 if args.quick else 7, engine=ff_engine))
    if fastfit_ok and "streaming" in args.sections:
        results["streaming"] = _section("streaming", log, lambda: call_once(
            "streaming:run", bound_samples=args.stream_samples, speed_samples=args.samples,
            buffer_size=args.stream_buffer_mb << 20, repeats=args.repeats, engine=ff_engine,
            directory=args.stream_dir, cold=not args.quick, with_anchors=not args.quick,
            workloads=["w1"] if args.quick else ["w1", "w3"]))
    if "distributed" in args.sections:
        from benchmarks import distributed
        results["distributed"] = _section("distributed", log, lambda: distributed.run(
            args.samples, args.repeats, engines=args.engines, quick=args.quick, settle=args.settle, log=log))
    if not fastfit_ok:
        results["note"] = "fastfit not importable: callbacks, gil, memory, checkpoint and streaming sections skipped"
    with Worker() as worker:          # versions and BLAS as the engines' processes see them
        results["machine"] = worker.call("machine:describe_with_imports", engines=ready)
    results["targets"] = report.targets(results)
    results["meta"]["seconds"] = time.perf_counter() - t0
    return results


def render(results):
    """Returns the printed report as one string."""
    lines = report.machine_lines(results["machine"], results["meta"]) + [""]
    if results["workloads"]:
        lines += report.throughput_lines(results["workloads"], results["engines"]) + [""]
    lines += report.section_lines(results)
    if results.get("note"):
        lines.append(results["note"])
    if results["targets"]:
        lines += ["", "targets (../shared/design.md, issues 3, 6, 20 and 22):"]
        lines += report.target_lines(results["targets"])
    lines.append(f"\n({results['meta']['seconds']:.0f} s)")
    return "\n".join(lines)


def main(argv=None):
    """Entry point; returns the process exit code (0, also when targets are missed)."""
    args = parse_args(argv)
    results = run(args, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(render(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
