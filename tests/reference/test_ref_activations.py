"""Reference activations: Keras 2.2 values, gradients against finite differences, large inputs."""
import numpy as np
import pytest

from fastfit._reference import activations
from fastfit.contract.names import ACTIVATIONS
from ref_helpers import central_diff

ALPHA, SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def direct(name, x):
    """Textbook definitions, evaluated in float64 on moderate inputs."""
    if name == "softmax":
        e = np.exp(x)
        return e / e.sum(-1, keepdims=True)
    return {
        "linear": lambda v: v,
        "relu": lambda v: np.where(v > 0, v, 0.0),
        "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
        "tanh": np.tanh,
        "elu": lambda v: np.where(v > 0, v, np.exp(v) - 1),
        "selu": lambda v: SCALE * np.where(v > 0, v, ALPHA * (np.exp(v) - 1)),
        "softplus": lambda v: np.log(1 + np.exp(v)),
        "softsign": lambda v: v / (1 + np.abs(v)),
        "hard_sigmoid": lambda v: np.clip(0.2 * v + 0.5, 0, 1),
        "exponential": np.exp,
    }[name](x)


def sample(seed=0, shape=(5, 6)):
    # Values in [-3, 3] away from the kinks at 0 and +-2.5 so finite differences are clean.
    x = np.random.default_rng(seed).uniform(-3, 3, size=shape)
    x[np.abs(x) < 0.05] = 0.3
    x[np.abs(np.abs(x) - 2.5) < 0.05] = 1.7
    return x


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_forward_matches_definition(name, dtype):
    x = sample().astype(dtype)
    y = activations.forward(name, x)
    assert y.dtype == dtype and y.shape == x.shape
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, direct(name, x.astype(np.float64)), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_backward_matches_finite_differences(name):
    x = sample(1)
    g_out = np.random.default_rng(2).normal(size=x.shape)
    y = activations.forward(name, x)
    grad = activations.backward(name, x, y, g_out)
    numeric = central_diff(lambda v: np.sum(activations.forward(name, v) * g_out), x.copy())
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_backward_in_place_matches_out_of_place(name, dtype):
    x = sample(3).astype(dtype)
    y = activations.forward(name, x)
    g = np.random.default_rng(4).normal(size=x.shape).astype(dtype)
    expected = activations.backward(name, x, y, g)
    got = activations.backward(name, x, y, g, out=g)
    assert got is g and got.dtype == dtype
    np.testing.assert_array_equal(got, expected)


def test_relu_and_hard_sigmoid_derivatives_at_kinks():
    x = np.array([[-3.0, -2.5, 0.0, 2.5, 3.0, 1.0]])
    ones = np.ones_like(x)
    relu = activations.backward("relu", x, activations.forward("relu", x), ones)
    np.testing.assert_array_equal(relu, [[0, 0, 0, 1, 1, 1]])
    hard = activations.backward("hard_sigmoid", x, activations.forward("hard_sigmoid", x), ones)
    np.testing.assert_allclose(hard, [[0, 0, 0.2, 0, 0, 0.2]])


@pytest.mark.parametrize("name", [a for a in ACTIVATIONS if a != "exponential"])
def test_large_inputs_stay_finite(name, dtype):
    x = np.array([[-1e4, -800.0, -90.0, 0.0, 90.0, 800.0, 1e4]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no warnings either
        y = activations.forward(name, x)
        g = activations.backward(name, x, y, np.ones_like(x))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(g))


def test_stable_forms_give_exact_limits(dtype):
    x = np.array([[-1e4, 1e4]], dtype=dtype)
    np.testing.assert_array_equal(activations.forward("sigmoid", x), [[0, 1]])
    np.testing.assert_array_equal(activations.forward("softplus", x), [[0, 1e4]])
    np.testing.assert_array_equal(activations.forward("softmax", x), [[0, 1]])
    np.testing.assert_allclose(activations.forward("elu", x), [[-1, 1e4]])


def test_exponential_overflows_to_inf_silently():
    with np.errstate(over="raise"):
        assert activations.forward("exponential", np.array([1e4])) == np.inf


def test_softmax_rows_sum_to_one_for_large_logits(dtype):
    x = np.array([[1000.0, 1001.0, 999.0], [-1e5, 0.0, 1e5]], dtype=dtype)
    y = activations.forward("softmax", x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(-1), 1, rtol=1e-6)
    np.testing.assert_allclose(y[0], direct("softmax", np.array([1.0, 2.0, 0.0])), rtol=1e-5)


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="activation: expected one of .* got 'swish'"):
        activations.forward("swish", np.zeros(3))
