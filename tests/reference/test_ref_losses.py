"""Reference losses: Keras 2.2 values, gradients (unfused and fused) against finite differences, the
sample-weight rule, clipping and large logits."""
import numpy as np
import pytest

from fastfit._reference import activations, losses
from fastfit.contract.names import EPSILON, LOSSES
from ref_helpers import central_diff

ROWS, UNITS = 6, 4


def make(name, seed=0):
    """float64 (y, p) for `name`, with every element away from kinks and clip bounds."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.1, 0.9, size=(ROWS, UNITS))
    labels = rng.integers(0, UNITS, ROWS)
    if name == "sparse_categorical_crossentropy":
        return labels.astype(np.int64), p
    if name == "categorical_crossentropy":
        return np.eye(UNITS)[labels], p
    if name == "categorical_hinge":
        # Rows 0-1 all negative: the largest (1 - y) * p is the true class's 0, so the argmax is the target.
        p = rng.uniform(-1, 1, size=(ROWS, UNITS))
        p[:2] = -np.abs(p[:2]) - 0.05
        return np.eye(UNITS)[labels], p
    if name in ("hinge", "squared_hinge"):
        y = np.where(rng.random((ROWS, UNITS)) < 0.5, -1.0, 1.0)
        return y, rng.uniform(-3, 3, size=(ROWS, UNITS)) * 0.3 + 0.05  # 1 - y p stays away from 0
    if name == "kullback_leibler_divergence":
        y = rng.random((ROWS, UNITS))
        return y / y.sum(-1, keepdims=True), p
    if name == "binary_crossentropy":
        return rng.random((ROWS, UNITS)), p
    if name == "cosine_proximity":
        return rng.normal(size=(ROWS, UNITS)), rng.normal(size=(ROWS, UNITS))
    y = rng.uniform(0.1, 0.9, size=(ROWS, UNITS))
    y[np.abs(y - p) < 0.02] += 0.05  # mae/mape: keep |p - y| away from 0
    return y, p


def weights(weighted):
    return np.array([2.0, 0.0, 1.0, 0.5, 3.0, 1.0]) if weighted else None


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name", LOSSES)
def test_unfused_gradient_matches_finite_differences(name, weighted):
    y, p = make(name)
    w = weights(weighted)
    grad = np.zeros_like(p)
    losses.batch_loss(name, y, p, w, grad_out=grad)
    numeric = central_diff(lambda q: losses.batch_loss(name, y, q, w), p.copy())
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name,act", [("categorical_crossentropy", "softmax"),
                                      ("sparse_categorical_crossentropy", "softmax"),
                                      ("binary_crossentropy", "sigmoid")])
def test_fused_gradient_matches_finite_differences_and_chain_rule(name, act, weighted):
    y, _ = make(name)
    z = np.random.default_rng(5).normal(size=(ROWS, UNITS))
    w = weights(weighted)
    grad = np.zeros_like(z)
    value = losses.batch_loss(name, y, activations.forward(act, z), w, fused=True, grad_out=grad)
    numeric = central_diff(lambda v: losses.batch_loss(name, y, activations.forward(act, v), w, fused=True),
                           z.copy())
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    # Away from the clip bounds the fused pair is the unfused loss after the activation.
    p = activations.forward(act, z)
    g_p = np.zeros_like(p)
    assert value == pytest.approx(losses.batch_loss(name, y, p, w, grad_out=g_p), rel=1e-12)
    np.testing.assert_allclose(grad, activations.backward(act, z, p, g_p), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,y,p,expected", [
    ("mean_squared_error", [[1.0, 2.0]], [[0.0, 0.0]], 2.5),
    ("mean_absolute_error", [[1.0, -2.0]], [[0.0, 0.0]], 1.5),
    ("mean_absolute_percentage_error", [[2.0]], [[1.0]], 50.0),
    ("mean_absolute_percentage_error", [[0.0]], [[1e-7]], 100.0),  # |y| clipped to eps
    ("mean_squared_logarithmic_error", [[0.0]], [[np.e - 1]], (1 - np.log(1 + EPSILON)) ** 2),
    ("squared_hinge", [[1.0]], [[0.5]], 0.25),
    ("hinge", [[1.0, -1.0]], [[0.5, 0.5]], 1.0),
    ("categorical_hinge", [[0.0, 1.0, 0.0]], [[0.2, 0.5, 0.3]], 0.8),
    ("logcosh", [[0.0, 0.0]], [[1.0, -30.0]], (np.log(np.cosh(1.0)) + 30 - np.log(2)) / 2),
    ("categorical_crossentropy", [[0.0, 1.0]], [[2.0, 2.0]], np.log(2)),  # normalised by the row sum
    ("categorical_crossentropy", [[0.0, 1.0]], [[1.0, 0.0]], -np.log(EPSILON)),
    ("sparse_categorical_crossentropy", [1], [[0.2, 0.5, 0.3]], -np.log(0.5)),
    ("binary_crossentropy", [[1.0, 0.0]], [[0.0, 0.5]], (-np.log(EPSILON) + np.log(2)) / 2),
    ("kullback_leibler_divergence", [[0.5, 0.5]], [[0.25, 0.75]], 0.5 * np.log(2) + 0.5 * np.log(2 / 3)),
    ("poisson", [[2.0]], [[1.0]], 1 - 2 * np.log(1 + EPSILON)),
    ("cosine_proximity", [[1.0, 0.0]], [[3.0, 3.0]], -1 / np.sqrt(2)),
    ("cosine_proximity", [[1.0, 0.0]], [[0.0, 0.0]], 0.0),
])
def test_values_match_keras_definitions(name, y, p, expected):
    y = np.array(y, dtype=np.int64 if name == "sparse_categorical_crossentropy" else np.float64)
    assert losses.batch_loss(name, y, np.array(p)) == pytest.approx(expected, rel=1e-9)


def test_sparse_categorical_crossentropy_clips_before_normalising():
    # TensorFlow backend: softmax cross-entropy of log(clip(p)) = log(sum clip(p)) - log(clip(p_label)).
    p = np.array([[0.0, 2.0]])
    expected = np.log(EPSILON + (1 - EPSILON)) - np.log(EPSILON)
    assert losses.batch_loss("sparse_categorical_crossentropy", np.array([0]), p) == pytest.approx(expected)


def test_sample_weight_rule():
    y, p = make("mean_squared_error")
    per = losses.values("mean_squared_error", y, p)[0]
    w = np.array([2.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    assert losses.batch_loss("mean_squared_error", y, p, w) == pytest.approx((2 * per[0] + per[2]) / 2)
    assert losses.batch_loss("mean_squared_error", y, p) == pytest.approx(per.mean())
    grad = np.ones_like(p)
    assert losses.batch_loss("mean_squared_error", y, p, np.zeros(ROWS), grad_out=grad) == 0.0
    np.testing.assert_array_equal(grad, 0)


def test_zero_weight_rows_never_contribute_nan():
    y = np.array([[1.0], [0.0]])
    p = np.array([[0.5], [-1.0]])  # poisson of the second row is NaN (log of a negative number)
    value = losses.batch_loss("poisson", y, p, np.array([1.0, 0.0]))
    assert value == pytest.approx(0.5 - np.log(0.5 + EPSILON))
    assert np.isnan(losses.batch_loss("poisson", y, p))  # numeric trouble is returned, not raised


@pytest.mark.parametrize("name,y,p,zero", [
    ("binary_crossentropy", [[1.0, 1.0]], [[0.0, 0.5]], (0, 0)),
    ("kullback_leibler_divergence", [[0.5, 0.5]], [[0.0, 1.0]], (0, 0)),
    ("categorical_crossentropy", [[1.0, 0.0]], [[0.0, 1.0]], (0, 0)),
    ("sparse_categorical_crossentropy", [0], [[0.0, 1.0]], (0, 0)),
    ("mean_squared_logarithmic_error", [[1.0, 1.0]], [[-1.0, 0.5]], (0, 0)),
])
def test_gradient_is_zero_where_a_clip_is_active(name, y, p, zero):
    y = np.array(y, dtype=np.int64 if name == "sparse_categorical_crossentropy" else np.float64)
    grad = np.full((1, 2), np.nan)
    value = losses.batch_loss(name, y, np.array(p), grad_out=grad)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert grad[zero] == 0


@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_large_logits_give_finite_softmax_crossentropy(name, dtype):
    z = np.array([[1e4, -1e4, 0.0], [0.0, 3e4, -3e4]], dtype=dtype)
    y = np.array([1, 0], dtype=np.int64) if name.startswith("sparse") else np.eye(3, dtype=dtype)[[1, 0]]
    p = activations.forward("softmax", z)
    grad = np.zeros_like(z)
    value = losses.batch_loss(name, y, p, fused=True, grad_out=grad)
    assert value == pytest.approx(-np.log(EPSILON), rel=1e-6)  # both rows hit the clip
    assert grad.dtype == dtype and np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, (p - np.eye(3)[[1, 0]]) / 2, atol=1e-7)


def test_gradient_is_written_in_the_network_dtype():
    y, p = make("mean_squared_error")
    grad32 = np.zeros(p.shape, np.float32)
    losses.batch_loss("mean_squared_error", y.astype(np.float32), p.astype(np.float32), grad_out=grad32)
    np.testing.assert_allclose(grad32, 2 * (p - y) / UNITS / ROWS, rtol=1e-5, atol=1e-7)


def test_per_sample_api_shapes_and_labels():
    p = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]], dtype=np.float32)
    out = losses.per_sample("sparse_categorical_crossentropy", np.array([[1], [0]]), p)
    assert out.dtype == np.float32 and out.shape == (2,)
    np.testing.assert_allclose(out, -np.log([0.5, 0.6]), rtol=1e-6)
    assert losses.per_sample("mean_squared_error", [1.0, 1.0], [0.0, 2.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"y_true: expected labels in \[0, 3\), got values in \[0, 3\]"):
        losses.per_sample("sparse_categorical_crossentropy", np.array([3, 0]), p)
    with pytest.raises(ValueError, match="y_true: expected a shape broadcastable to"):
        losses.per_sample("mean_squared_error", np.zeros((2, 2)), p)
    with pytest.raises(ValueError, match="loss: expected one of"):
        losses.per_sample("huber", p, p)
