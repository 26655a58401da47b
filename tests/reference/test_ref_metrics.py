"""Reference metrics: accuracies, top-k with ties, losses as metrics, the per-sample API."""
import numpy as np
import pytest

from fastfit._reference import losses, metrics


def test_binary_accuracy_rounds_half_to_even(dtype):
    y = np.array([[1, 0, 0, 1], [0, 0, 1, 1]], dtype=dtype)
    p = np.array([[0.7, 0.5, 0.2, 0.5], [0.51, 0.49, 0.9, 0.1]], dtype=dtype)
    # Row 0: 0.5 rounds to 0 (right for y=0, wrong for y=1) -> 3/4; row 1: 0.51 -> 1 wrong -> 2/4.
    np.testing.assert_allclose(metrics.values("binary_accuracy", y, p), [0.75, 0.5])
    assert metrics.batch_metric("binary_accuracy", y, p) == pytest.approx(0.625)


def test_categorical_accuracies_take_the_first_maximum(dtype):
    y = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=dtype)
    p = np.array([[0.1, 0.8, 0.1], [0.4, 0.4, 0.2], [0.5, 0.3, 0.2]], dtype=dtype)
    np.testing.assert_array_equal(metrics.values("categorical_accuracy", y, p), [1, 1, 0])
    labels = np.array([1, 1, 2], dtype=np.int64)
    np.testing.assert_array_equal(metrics.values("sparse_categorical_accuracy", labels, p), [1, 0, 0])


def test_top_k_counts_ties_as_hits(dtype):
    # Label score 0.1: row 0 has 5 strictly greater scores (miss), row 1 only 4 (hit, despite ties).
    p = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.05],
                  [0.1, 0.1, 0.1, 0.4, 0.5, 0.6, 0.7]], dtype=dtype)
    labels = np.array([0, 0], dtype=np.int64)
    np.testing.assert_array_equal(metrics.values("sparse_top_k_categorical_accuracy", labels, p), [0, 1])
    y = np.eye(7, dtype=dtype)[[0, 0]]
    np.testing.assert_array_equal(metrics.values("top_k_categorical_accuracy", y, p), [0, 1])


def test_loss_as_metric_is_the_unweighted_unfused_mean():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.1, 0.9, size=(5, 3))
    y = np.eye(3)[rng.integers(0, 3, 5)]
    expected = losses.values("categorical_crossentropy", y, p)[0].mean()
    assert metrics.batch_metric("categorical_crossentropy", y, p) == pytest.approx(expected)


def test_per_sample_api():
    p = np.array([[0.1, 0.8, 0.1], [0.4, 0.5, 0.1]], dtype=np.float32)
    out = metrics.per_sample("sparse_categorical_accuracy", np.array([[1.0], [0.0]]), p)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [1, 0])
    np.testing.assert_array_equal(metrics.per_sample("categorical_accuracy", np.eye(3)[[1, 1]], p), [1, 1])
    with pytest.raises(ValueError, match="metric: expected one of .* got 'f1'"):
        metrics.per_sample("f1", p, p)
