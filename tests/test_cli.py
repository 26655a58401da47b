"""The `fastfit` command: demo, bench, info and the argument parsing."""
import os
import subprocess
import sys

import pytest

from fastfit.cli import bench, demo, info, main
from fastfit.core import compiled_core


def test_help_of_every_command(capsys):
    for argv in (["--help"], ["demo", "--help"], ["bench", "--help"], ["info", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        assert "usage: fastfit" in capsys.readouterr().out


def test_version(capsys):
    import fastfit

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"fastfit {fastfit.__version__}"


@pytest.mark.parametrize("argv", [[], ["--epochs", "2"]])
def test_demo_is_the_default(monkeypatch, argv):
    seen = []
    monkeypatch.setattr(demo, "run", lambda args: seen.append(args) or 0)
    assert main(argv) == 0
    assert seen[0].command == "demo" and seen[0].out == "fastfit_demo_output"
    assert seen[0].epochs == (2 if argv else 60)


def test_demo_reaches_target_accuracy(tmp_path, capsys):
    out = tmp_path / "demo"
    args = main_args(["demo", "--out", str(out), "--verbose", "0", "--compare-epochs", "2"])
    result = demo.run(args)
    text = capsys.readouterr().out
    assert result["accuracy"] >= 0.95
    assert result["reloaded_accuracy"] >= 0.95
    assert result["epochs"] < 60  # early stopping ended the run
    assert (out / "best_model.h5").is_file() and (out / "training_log.csv").is_file()
    log_lines = (out / "training_log.csv").read_text().splitlines()
    assert log_lines[0] == "epoch,acc,loss,val_acc,val_loss" and len(log_lines) == result["epochs"] + 1
    assert "Test accuracy:" in text and "Training time:" in text
    if compiled_core() is not None:
        assert set(result["comparison"]) == {"cython", "python", "ratio"}
        assert "the Cython engine was" in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "fastfit[plot]" in text
    else:
        assert open(out / "history.png", "rb").read(4) == b"\x89PNG"


def test_demo_without_matplotlib_prints_a_note(tmp_path, capsys, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    args = main_args(["demo", "--out", str(tmp_path), "--verbose", "0", "--epochs", "2",
                      "--compare-epochs", "0", "--engine", "python"])
    result = demo.run(args)
    assert result["plot"] is None and result["comparison"] is None
    assert 'pip install "fastfit[plot]"' in capsys.readouterr().out
    assert not (tmp_path / "history.png").exists()


def test_demo_progress_bar_and_early_stopping_message(tmp_path, capsys):
    args = main_args(["demo", "--out", str(tmp_path), "--verbose", "1", "--epochs", "2",
                      "--compare-epochs", "0"])
    demo.run(args)
    text = capsys.readouterr().out
    assert "Epoch 2/2" in text and "[==============================]" in text and "val_acc" in text


@pytest.mark.parametrize("option", ["--epochs", "--batch-size", "--hidden"])
def test_demo_rejects_bad_numbers(option):
    with pytest.raises(SystemExit, match=f"{option} must be >= 1, got 0"):
        demo.run(main_args(["demo", option, "0"]))


def test_info_reports_versions_blas_and_extensions(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    for label in ("fastfit", "numpy", "scipy", "h5py", "compiled extensions", "default engine",
                  "BLAS used by fastfit"):
        assert label in text
    rows = dict(info.collect())
    expected = "all import" if compiled_core() is not None else "NOT available"
    assert rows["compiled extensions"].startswith(expected)
    assert rows["default engine"] in ("cython", "python")


def test_info_without_threadpoolctl(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    rows = dict(info.collect())
    assert "pip install threadpoolctl" in rows["BLAS threads"]


def test_bench_builtin(capsys):
    assert main(["bench", "--builtin", "--epochs", "1", "--samples", "256"]) == 0
    text = capsys.readouterr().out
    if compiled_core() is None:
        assert "not built" in text
    else:
        assert text.count("samples/s") == 2 * len(bench.WORKLOADS)


def test_bench_runs_the_repository_benchmark(monkeypatch, tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "__main__.py").write_text("")
    calls = []
    monkeypatch.setattr(bench, "repo_benchmarks", lambda: str(tmp_path))
    monkeypatch.setattr(bench.subprocess, "call", lambda command, cwd: calls.append((command, cwd)) or 0)
    assert main(["bench"]) == 0
    assert calls == [([sys.executable, "-m", "benchmarks", "--quick"], str(tmp_path))]


def test_bench_rejects_bad_numbers():
    with pytest.raises(SystemExit, match="--epochs and --samples must be >= 1"):
        main(["bench", "--builtin", "--samples", "0"])


def test_python_dash_m_fastfit(tmp_path):
    env = dict(os.environ)
    import fastfit
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(fastfit.__file__)),
                                         env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-m", "fastfit", "info", "--help"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage: fastfit info" in done.stdout


def main_args(argv):
    from fastfit.cli import build_parser

    return build_parser().parse_args(argv)


def test_describe_ratio():
    from fastfit.cli.timing import describe_ratio

    assert describe_ratio(4.25) == "4.2x faster"
    assert describe_ratio(0.8) == "0.8x as fast (slower)"
