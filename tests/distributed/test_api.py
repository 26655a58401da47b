"""fastfit.distributed in one process (no MPI needed): the API before `init()`, which callbacks a rank keeps, the
bytes of a step, and the global-row offsets of the dropout draws."""
import numpy as np
import pytest

from fastfit import distributed
from fastfit._reference import losses, rng
from fastfit.callbacks import (CSVLogger, EarlyStopping, ModelCheckpoint, ProgbarLogger, ReduceLROnPlateau,
                               TerminateOnNaN)
from fastfit.layers import Dense
from fastfit.models import Sequential


def test_one_process_without_init():
    assert not distributed.is_initialized()
    assert (distributed.rank(), distributed.size(), distributed.local_rank(), distributed.local_size()) == (0, 1, 0, 1)
    array = np.arange(3.0)
    assert distributed.broadcast(array) is array
    assert distributed.allreduce(2.5) == 2.5
    np.testing.assert_array_equal(distributed.allreduce(array, average=True), array)
    distributed.barrier()
    with pytest.raises(RuntimeError, match="init"):
        distributed.communicator()
    with pytest.raises(ValueError, match="threads"):
        distributed.init(threads=0)


class _Rank:
    def __init__(self, rank):
        self.rank, self.size = rank, 2


class _MyCheckpoint(ModelCheckpoint):
    pass


def test_ranks_other_than_zero_drop_the_callbacks_that_write(monkeypatch, tmp_path):
    keep = [EarlyStopping(), ReduceLROnPlateau(), TerminateOnNaN()]
    write = [ModelCheckpoint(str(tmp_path / "m.h5")), _MyCheckpoint(str(tmp_path / "n.h5")),
             CSVLogger(str(tmp_path / "log.csv")), ProgbarLogger()]
    monkeypatch.setattr(distributed, "_reducer", _Rank(1))
    assert distributed.rank_callbacks(keep + write) == keep
    assert distributed.rank_verbose(1) == 0
    monkeypatch.setattr(distributed, "_reducer", _Rank(0))
    assert distributed.rank_callbacks(keep + write) == keep + write
    assert distributed.rank_verbose(2) == 2


def test_step_bytes_counts_gradients_and_batch_values():
    model = Sequential([Dense(5, input_dim=4, activation="relu"), Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["acc"])
    parameters = 4 * 5 + 5 + 5 * 3 + 3
    assert distributed.step_bytes(model) == (parameters + 2) * 4  # the loss share and the accuracy sum


def test_dropout_draws_of_a_share_are_those_of_its_rows_in_the_batch():
    whole = rng.dropout_mask(11, 3, (6, 4), 0.4, np.float32)
    share = rng.dropout_mask(11, 3, (2, 4), 0.4, np.float32, offset=4 * 4)
    np.testing.assert_array_equal(share, whole[4:])


def test_loss_factors_of_a_share_divide_by_the_global_batch():
    weights = np.array([1.0, 0.0, 2.0, 3.0])
    np.testing.assert_array_equal(losses.weight_factors(2, weights[2:], count=3), weights[2:] / 3)
    np.testing.assert_array_equal(losses.weight_factors(2, None, count=4), [0.25, 0.25])
    assert losses.weight_factors(0, None, count=4).shape == (0,)


def test_the_timeout_comes_from_the_argument_the_environment_or_the_default(monkeypatch):
    monkeypatch.delenv("FASTFIT_MPI_TIMEOUT", raising=False)
    assert distributed._timeout_seconds(None) == distributed.DEFAULT_TIMEOUT == 300
    assert distributed._timeout_seconds(2.5) == 2.5
    assert distributed._timeout_seconds(0) == 0  # the watchdog off
    monkeypatch.setenv("FASTFIT_MPI_TIMEOUT", "7")
    assert distributed._timeout_seconds(None) == 7
    assert distributed._timeout_seconds(3) == 3  # the argument first
    monkeypatch.setenv("FASTFIT_MPI_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="FASTFIT_MPI_TIMEOUT must be a number of seconds.*'soon'"):
        distributed._timeout_seconds(None)
    for bad in (-1, float("inf"), float("nan"), "3", True):
        with pytest.raises(ValueError, match="`timeout` must be a non-negative number of seconds"):
            distributed._timeout_seconds(bad)
    with pytest.raises(ValueError, match="timeout"):
        distributed.init(timeout=-1)  # checked before MPI is joined


class _Progress:
    """A reducer's progress counters without MPI: [allreduces completed, waiting in one]."""

    def __init__(self):
        self.rank, self.size = 1, 2
        self.progress = [0, 0]


def test_a_rank_running_its_own_code_too_long_warns_with_its_stack(capsys):
    # Not waiting in a collective: the watchdog warns once after timeout / 2 with the stack of the watched
    # thread, and never aborts from this rank (the waiting ranks do).
    import time
    reducer = _Progress()
    watchdog = distributed.Watchdog(reducer, timeout=0.2, multiple=True)
    err = ""
    with watchdog.watching("fit"):
        deadline = time.monotonic() + 30  # a bound for a loaded machine; the warning comes after 0.1 s
        while "running its own code" not in err and time.monotonic() < deadline:
            time.sleep(0.05)  # own code, no allreduce completes
            err += capsys.readouterr().err
        time.sleep(0.3)
        err += capsys.readouterr().err
    assert err.count("fastfit.distributed: rank 1 of 2, in fit") == 1
    assert "before the allreduce of step 1" in err and "Stack of the thread running fit" in err
    assert "test_a_rank_running_its_own_code_too_long_warns_with_its_stack" in err
