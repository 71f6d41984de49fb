"""conv4's folded block 0 gives the learners the meta-gradients of the unfolded network.

`tfmeta.layers.ConvBatchNormalization` folds block 0's batch norm into its convolution in
training. A twin conv4 with the fold switched off (the convolution, then the batch norm)
must give the same loss, meta-gradients and moving statistics, in float64, through MAML's
inner loop (second order, per-step batch norm) and ProtoNet.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from episode_fixtures import classification_episodes

import tfmeta


@pytest.fixture
def float64_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_dtype_policy(previous)


def conv4_pair(num_classes=None):
    """conv4 twice with the same weights, the second with block 0 unfolded."""
    models = []
    for _ in range(2):
        keras.utils.set_random_seed(5)
        models.append(tfmeta.backbones.conv4((16, 16, 1), filters=4, num_classes=num_classes))
    folded, unfolded = models
    assert folded.get_layer("block0_conv_bn")._folds(tf.zeros([1, 16, 16, 1]))
    unfolded.get_layer("block0_conv_bn")._folds = lambda inputs: False
    return folded, unfolded


def inputs_of(episodes):
    inputs, query_y = episodes
    return ({key: tf.constant(value, tf.float64 if key.endswith("_x") else None)
             for key, value in inputs.items()}, tf.constant(query_y))


@pytest.mark.parametrize("options", [{}, {"per_step_batch_norm": True, "first_order": True}])
def test_maml_meta_gradients_match_the_unfolded_network(float64_policy, options):
    inputs, query_y = inputs_of(classification_episodes(
        tasks=2, ways=3, shots=2, queries=3, shape=(16, 16, 1), seed=1))
    results = []
    for model in conv4_pair(num_classes=3):
        learner = tfmeta.MAML(model, inner_steps=2, inner_learning_rate=0.3, **options)
        learner.compile(optimizer=keras.optimizers.SGD(1.0),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        loss, _, gradients = learner.compute_meta_gradients(
            inputs["support_x"], inputs["support_y"], inputs["query_x"], query_y, None)
        results.append([float(loss)] + [np.array(g) for g in gradients]
                       + [np.array(v) for v in learner.non_trainable_variables])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_protonet_gradients_match_the_unfolded_network(float64_policy):
    inputs, query_y = inputs_of(classification_episodes(
        tasks=2, ways=3, shots=2, queries=3, shape=(16, 16, 1), seed=2))
    results = []
    for model in conv4_pair():
        learner = tfmeta.ProtoNet(model, ways=3)
        with tf.GradientTape() as tape:
            logits = learner(inputs, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                query_y, logits, from_logits=True))
        gradients = tape.gradient(loss, learner.trainable_variables)
        results.append([float(loss)] + [np.array(g) for g in gradients]
                       + [np.array(v) for v in learner.non_trainable_variables])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
