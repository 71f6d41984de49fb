"""Tiny episodes and models shared by the learner tests."""

import keras
import numpy as np
import tensorflow as tf

import tfmeta


def regression_episodes(tasks=3, support=6, queries=5, features=2, seed=0, dtype="float64"):
    """Random regression episodes of the contract: inputs dict and query_y."""
    rng = np.random.default_rng(seed)
    inputs = {
        "support_x": rng.normal(size=(tasks, support, features)).astype(dtype),
        "support_y": rng.normal(size=(tasks, support, 1)).astype(dtype),
        "query_x": rng.normal(size=(tasks, queries, features)).astype(dtype),
    }
    query_y = rng.normal(size=(tasks, queries, 1)).astype(dtype)
    return inputs, query_y


def classification_episodes(tasks=2, ways=3, shots=2, queries=2, shape=(28, 28, 1), seed=0):
    """Random image episodes with shuffled support labels."""
    rng = np.random.default_rng(seed)
    support_y = np.stack([rng.permutation(np.repeat(np.arange(ways), shots)) for _ in range(tasks)])
    query_y = np.stack([rng.permutation(np.repeat(np.arange(ways), queries)) for _ in range(tasks)])
    inputs = {
        "support_x": rng.normal(size=(tasks, ways * shots, *shape)).astype("float32"),
        "support_y": support_y.astype("int32"),
        "query_x": rng.normal(size=(tasks, ways * queries, *shape)).astype("float32"),
    }
    return inputs, query_y.astype("int32")


def tanh_mlp(features=2, hidden=4, seed=1):
    keras.utils.set_random_seed(seed)
    return tfmeta.backbones.mlp(
        input_shape=(features,), hidden_units=(hidden,), output_units=1, activation="tanh"
    )


def model_weights(model):
    return [np.array(v.numpy()) for v in model.trainable_variables]


def as_episodes(inputs, query_y):
    return list(zip(inputs["support_x"], inputs["support_y"], inputs["query_x"], query_y))


def meta_gradients(learner, inputs, query_y):
    """Loss and gradients, ordered as the model's weights followed by the learned rates."""
    loss, _, gradients = learner.compute_meta_gradients(
        tf.constant(inputs["support_x"]),
        tf.constant(inputs["support_y"]),
        tf.constant(inputs["query_x"]),
        tf.constant(query_y),
        None,
    )
    by_variable = {id(v): g.numpy() for v, g in zip(learner.trainable_variables, gradients)}
    ordered = list(learner.model.trainable_variables) + list(learner._inner_rates or [])
    assert len(ordered) == len(gradients)
    return float(loss), [by_variable[id(v)] for v in ordered]
