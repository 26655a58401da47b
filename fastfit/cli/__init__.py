"""The `fastfit` command (`python -m fastfit`): `demo` (the default), `bench` and `info`."""
import argparse

from fastfit.cli import bench, demo, info

COMMANDS = {
    "demo": (demo, "train an MLP on the bundled digits: progress bar, early stopping, checkpoints, CSV log, "
                   "plot, and the speed of the Cython engine against the NumPy reference"),
    "bench": (bench, "a quick benchmark: the repository's `python -m benchmarks --quick`, or a built-in "
                     "timing of both engines"),
    "info": (info, "versions, the BLAS library and its threads, compiled extension status, default engine"),
}


def build_parser():
    """The argument parser of the `fastfit` command, one subparser per entry of `COMMANDS`."""
    import fastfit

    parser = argparse.ArgumentParser(
        prog="fastfit", description="fastfit: Keras-2-compatible training on the CPU with a Cython core. "
        "Without a command, runs `demo`.")
    parser.add_argument("--version", action="version", version=f"fastfit {fastfit.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{demo,bench,info}")
    for name, (module, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        module.add_arguments(sub)
    return parser


def main(argv=None):
    """Entry point of `fastfit` and `python -m fastfit`; returns the exit status.

    Arguments:
        argv: the arguments (default: `sys.argv[1:]`). With no command, or options only, `demo` runs.
    """
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "demo")
    args = build_parser().parse_args(argv)
    module = COMMANDS[args.command][0]
    result = module.run(args)
    return result if isinstance(result, int) else 0
