"""Run benchmark code in fresh interpreters, so thread pools and environment settings never mix.

PyTorch's OpenMP threads, Keras, and the OpenBLAS threads used by SciPy (and so by fastfit) spin-wait after
their parallel regions; in one process they steal cores from each other and make every number depend on
which engine ran just before. So each engine lives in its own worker process, which the parent drives one
epoch at a time (that keeps the engines interleaved), and one-shot measurements that need environment
variables set before import (BLAS threads for the GIL benchmark) get a fresh interpreter with that
environment.

Protocol: the parent writes one JSON line `{"call": "module:function", "kwargs": {...}}` to the worker's
stdin; the worker calls `benchmarks.<module>.<function>(**kwargs)` and answers one JSON line
`{"result": ...}` or `{"error": "..."}` on a private copy of its original stdout (anything the libraries
print goes to stderr instead). State kept between calls lives in the called modules.
"""
import importlib
import json
import os
import select
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class WorkerError(RuntimeError):
    """A call in a worker raised, timed out, or the worker died."""


class Worker:
    """A persistent worker interpreter running `python -m benchmarks.isolate`.

    Arguments:
        env: extra environment variables for the worker (set before any import there).
        quiet: send the worker's stderr to /dev/null instead of ours.
    """

    def __init__(self, env=None, quiet=True):
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env.update({k: str(v) for k, v in (env or {}).items()})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.isolate"], cwd=ROOT, env=full_env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if quiet else None)

    def call(self, target, timeout=None, **kwargs):
        """Calls `benchmarks.<target>` in the worker and returns its (JSON) result.

        Arguments:
            target: `"module:function"`, module relative to the `benchmarks` package.
            timeout: seconds to wait for the answer (None = no limit).
            **kwargs: JSON-serialisable keyword arguments.

        Raises:
            WorkerError: the function raised (message included), the worker died or timed out.
        """
        self.send(target, **kwargs)
        return self.receive(timeout)

    def send(self, target, **kwargs):
        """Starts a call without waiting (pair with `receive`), so several workers can run at once."""
        if self.proc.poll() is not None:
            raise WorkerError(f"worker exited with code {self.proc.returncode} before calling {target}")
        self.pending = target
        self.proc.stdin.write(json.dumps({"call": target, "kwargs": kwargs}) + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout=None):
        """Waits for the answer of the call started by `send`; see `call`."""
        target = getattr(self, "pending", "?")
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise WorkerError(f"{target} gave no answer within {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise WorkerError(f"worker died (exit code {code}) during {target}")
        reply = json.loads(line)
        if "error" in reply:
            raise WorkerError(reply["error"])
        return reply["result"]

    def close(self):
        """Stops the worker (it exits when its stdin closes; killed if it does not within 10 s)."""
        if self.proc.poll() is None:
            try:
                self.proc.kill() if self.proc.stdin.closed else self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def call_once(target, env=None, timeout=None, **kwargs):
    """Runs one call in a fresh worker and returns its result (see `Worker.call`)."""
    with Worker(env=env) as worker:
        return worker.call(target, timeout=timeout, **kwargs)


def _serve():
    """Worker side: answer calls until stdin closes."""
    reply_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)                      # library prints (C or Python) must not corrupt the protocol
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        try:
            module, func = request["call"].split(":")
            fn = getattr(importlib.import_module(f"benchmarks.{module}"), func)
            reply = {"result": fn(**request["kwargs"])}
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        reply_out.write(json.dumps(reply) + "\n")
        reply_out.flush()


if __name__ == "__main__":
    _serve()
