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
