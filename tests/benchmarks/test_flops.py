"""benchmarks/flops.py: hand-derived FLOP counts, checked against TensorFlow's profiler."""

import dataclasses
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import flops  # noqa: E402
from _common import WORKLOADS, build_learner, random_episodes  # noqa: E402


def conv_then_dense():
    """4x4x2 -> Conv2D(3, 3x3, same) -> 4x4x3 -> Flatten -> Dense(5)."""
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(5, name="dense")(x))


def test_a_single_convolution_forward_and_backward():
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(inputs))
    ops = flops.linear_ops(model)
    # 16 output positions x 3 filters x (3 x 3 x 2) multiply-adds x 2 FLOPs.
    assert [(op.flops, op.input_gradient) for op in ops] == [(1728, False)]
    assert flops.forward_flops(ops, 5) == 5 * 1728
    assert flops.backward_flops(ops, 5) == 5 * 1728  # The kernel's gradient only.
    assert flops.second_order_flops(ops, 5) == 5 * 2 * 1728


def test_a_dense_layer_after_a_convolution_needs_its_input_gradient():
    ops = flops.linear_ops(conv_then_dense())
    # conv: 16 positions x 3 filters x 18 x 2 = 1728; dense: 48 x 5 x 2 = 480.
    assert [(op.name, op.flops, op.input_gradient) for op in ops] == [
        ("conv", 1728, False), ("dense", 480, True)]
    assert flops.forward_flops(ops, 1) == 2208
    assert flops.backward_flops(ops, 1) == 1728 + 2 * 480
    assert flops.second_order_flops(ops, 1) == 2 * 1728 + 6 * 480
    task = flops.maml_task_flops(ops, support=2, query=3, inner_steps=1)
    assert task.total == 5 * 2208 + 5 * 2688 + 2 * 6336
    assert flops.maml_task_flops(ops, 2, 3, 1, first_order=True).total == 5 * 2208 + 5 * 2688


def test_an_unknown_layer_with_a_kernel_is_refused():
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.DepthwiseConv2D(3)(inputs))
    with pytest.raises(ValueError, match="has a kernel this count does not know"):
        flops.linear_ops(model)


def hand_maml_graph(first_order):
    """One MAML task on `conv_then_dense` in raw TensorFlow ops: 2 support, 3 query.

    (With "same" padding: the profiler counts a backward convolution over the input's
    positions, which overcounts "valid" ones.)
    """
    conv = tf.Variable(tf.random.normal([3, 3, 2, 3]))
    dense = tf.Variable(tf.random.normal([48, 5]))

    def loss(weights, x):
        hidden = tf.nn.relu(tf.nn.conv2d(x, weights[0], 1, "SAME"))
        return tf.reduce_sum(tf.matmul(tf.reshape(hidden, [-1, 48]), weights[1]) ** 2)

    @tf.function
    def step(support, query):
        with tf.GradientTape() as outer:
            weights = [conv.read_value(), dense.read_value()]
            outer.watch(weights)
            with tf.GradientTape() as inner:
                inner.watch(weights)
                support_loss = loss(weights, support)
            gradients = inner.gradient(support_loss, weights)
            if first_order:
                gradients = [tf.stop_gradient(g) for g in gradients]
            fast = [w - 0.1 * g for w, g in zip(weights, gradients)]
            query_loss = loss(fast, query)
        return outer.gradient(query_loss, weights)

    return step.get_concrete_function(tf.zeros([2, 4, 4, 2]), tf.zeros([3, 4, 4, 2])).graph


@pytest.mark.parametrize("first_order", [False, True])
def test_the_maml_count_is_the_profilers_on_a_hand_written_task(first_order):
    ops = flops.linear_ops(conv_then_dense())
    expected = flops.maml_task_flops(ops, support=2, query=3, inner_steps=1,
                                     first_order=first_order).total
    assert flops.graph_flops(hand_maml_graph(first_order))["total"] == expected


def profiled_over_analytic(name, keras_batch_norm=False):
    workload = dataclasses.replace(WORKLOADS[name], meta_batch=1)
    learner = build_learner(workload, keras_batch_norm=keras_batch_norm)
    model = learner.encoder if workload.algo == "protonet" else learner.model
    inputs, targets = random_episodes(workload, count=1)
    batch = {key: tf.constant(value[0]) for key, value in inputs.items()}
    profiled = flops.profiled_flops(learner, batch, tf.constant(targets[0]))["total"]
    return profiled / flops.workload_task_flops(workload, model).total


# tfmeta's conv4 folds its first batch norm into its convolution in training: the
# profiler also counts the fold's patch convolution, its extra input channel and the
# patches' covariance, which are not the model's FLOPs (measured 3.3-3.6% more).
FOLD_TOLERANCE = 0.05


@pytest.mark.parametrize("name", ["maml", "fomaml", "protonet"])
def test_the_count_agrees_with_the_profiler_on_conv4_at_omniglot_shapes(name):
    assert 1.0 <= profiled_over_analytic(name) <= 1.0 + FOLD_TOLERANCE


def test_the_count_is_the_profilers_on_conv4_with_keras_batch_norm():
    np.testing.assert_allclose(profiled_over_analytic("maml", keras_batch_norm=True), 1.0,
                               rtol=1e-6)


def test_a_meta_batch_run_in_a_loop_is_refused():
    workload = WORKLOADS["fomaml32"]
    learner = build_learner(workload)
    inputs, targets = random_episodes(workload, count=1)
    batch = {key: tf.constant(value[0]) for key, value in inputs.items()}
    with pytest.raises(ValueError, match="use a meta-batch small enough to be unrolled"):
        flops.profiled_flops(learner, batch, tf.constant(targets[0]))
