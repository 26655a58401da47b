"""Reference from-logits crossentropies (tf.keras `from_logits=True`): values against the plain losses of
softmax/sigmoid outputs, gradients against finite differences and the closed forms softmax(z) - y and
(sigmoid(z) - y) / units, and no clipping for large logits."""
import numpy as np
import pytest

from fastfit._reference import activations, losses
from fastfit.contract.names import FROM_LOGITS_LOSSES
from ref_helpers import central_diff

ROWS, UNITS = 6, 4
PLAIN = {"categorical_crossentropy_from_logits": ("categorical_crossentropy", "softmax"),
         "sparse_categorical_crossentropy_from_logits": ("sparse_categorical_crossentropy", "softmax"),
         "binary_crossentropy_from_logits": ("binary_crossentropy", "sigmoid")}


def make(name, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.uniform(-4, 4, size=(ROWS, UNITS))
    labels = rng.integers(0, UNITS, ROWS)
    if name.startswith("sparse"):
        return labels.astype(np.int64), z
    if name.startswith("categorical"):
        y = rng.random((ROWS, UNITS))  # soft targets: the gradient carries sum(y)
        return y / y.sum(-1, keepdims=True) * 1.5, z
    return rng.random((ROWS, UNITS)), z


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name", FROM_LOGITS_LOSSES)
def test_gradient_matches_finite_differences(name, weighted):
    y, z = make(name)
    w = np.array([2.0, 0.0, 1.0, 0.5, 3.0, 1.0]) if weighted else None
    grad = np.zeros_like(z)
    losses.batch_loss(name, y, z, w, grad_out=grad)
    numeric = central_diff(lambda q: losses.batch_loss(name, y, q, w), z.copy())
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", FROM_LOGITS_LOSSES)
def test_values_equal_the_plain_loss_of_the_activated_output_and_gradient_is_closed_form(name):
    plain, activation = PLAIN[name]
    y, z = make(name)
    if plain == "categorical_crossentropy":
        y = y / 1.5  # the plain loss renormalises p only; compare on targets summing to 1
    p = activations.forward(activation, z)
    value, grad = losses.values(name, y, z, grad=True)
    np.testing.assert_allclose(value, losses.values(plain, y, p)[0], rtol=1e-10)
    target = np.eye(UNITS)[y] if name.startswith("sparse") else y
    expected = (p - target) / (UNITS if activation == "sigmoid" else 1)
    np.testing.assert_allclose(grad, expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", FROM_LOGITS_LOSSES)
def test_large_logits_are_not_clipped(name):
    z = np.array([[1e4, -1e4, 0.0], [0.0, 3e4, -3e4]])
    if name.startswith("binary"):
        y = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
        expected = [(1e4 + 1e4 + np.log(2)) / 3, (np.log(2) + 3e4 + 3e4) / 3]
    else:
        labels = np.array([1, 2], dtype=np.int64)
        y = labels if name.startswith("sparse") else np.eye(3)[labels]
        expected = [2e4, 6e4]
    value, grad = losses.values(name, y, z, grad=True)
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    assert np.all(np.isfinite(grad))
