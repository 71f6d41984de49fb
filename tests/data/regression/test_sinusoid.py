"""Sinusoid regression tasks: contract, ranges, y = A sin(x - phase), determinism."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfmeta.data import sinusoid


def first(dataset):
    return tf.nest.map_structure(lambda t: t.numpy(), next(iter(dataset)))


def test_contract_and_static_shapes():
    dataset = sinusoid(shots=5, queries=7, meta_batch_size=3)
    inputs_spec, query_y_spec = dataset.element_spec
    assert set(inputs_spec) == {"support_x", "support_y", "query_x"}
    assert inputs_spec["support_x"] == tf.TensorSpec([3, 5, 1], tf.float32)
    assert inputs_spec["support_y"] == tf.TensorSpec([3, 5, 1], tf.float32)
    assert inputs_spec["query_x"] == tf.TensorSpec([3, 7, 1], tf.float32)
    assert query_y_spec == tf.TensorSpec([3, 7, 1], tf.float32)
    assert dataset.cardinality() == tf.data.INFINITE_CARDINALITY


def test_defaults_follow_the_design():
    inputs, query_y = first(sinusoid())
    assert inputs["support_x"].shape == (25, 10, 1) and query_y.shape == (25, 10, 1)


def test_each_task_is_one_sinusoid_with_parameters_in_range():
    inputs, query_y = first(sinusoid(shots=10, queries=10, meta_batch_size=64, seed=4))
    x = np.concatenate([inputs["support_x"], inputs["query_x"]], axis=1)[..., 0]
    y = np.concatenate([inputs["support_y"], query_y], axis=1)[..., 0]
    assert x.min() >= -5.0 and x.max() < 5.0
    for xs, ys in zip(x, y):
        # y = A sin(x - p) = a sin x + b cos x with a = A cos p, b = -A sin p.
        design = np.stack([np.sin(xs), np.cos(xs)], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, ys, rcond=None)
        np.testing.assert_allclose(design @ [a, b], ys, atol=1e-4)
        amplitude, phase = math.hypot(a, b), math.atan2(-b, a)
        assert 0.1 - 1e-4 <= amplitude <= 5.0 + 1e-4
        assert -1e-4 <= phase <= math.pi + 1e-4


def test_determinism_under_seed():
    a, b, c = (first(sinusoid(seed=s)) for s in (1, 1, 2))
    tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(a[1], c[1])
    batches = list(sinusoid(seed=1).take(2))
    assert not np.array_equal(batches[0][1], batches[1][1])


def test_custom_ranges():
    inputs, _ = first(sinusoid(input_range=(0.0, 1.0), amplitude_range=(2.0, 2.5)))
    assert inputs["support_x"].min() >= 0.0 and inputs["support_x"].max() < 1.0
    assert np.abs(inputs["support_y"]).max() <= 2.5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shots": 0}, r"`shots`: expected a positive integer. Received: shots=0"),
        ({"queries": 1.5}, r"`queries`: expected a positive integer"),
        ({"meta_batch_size": -2}, r"`meta_batch_size`: expected a positive integer"),
        ({"seed": None}, r"`seed`: expected an integer"),
        ({"amplitude_range": (5.0, 0.1)}, r"`amplitude_range`: expected a pair"),
        ({"input_range": "ab"}, r"`input_range`: expected a pair"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sinusoid(**kwargs)
