"""Tiny learners and Gaussian-cluster episodes for the callback tests."""

import keras
import numpy as np
import tensorflow as tf

import tfmeta

FEATURES = 8
WAYS = 3
LEARNERS = ("maml", "reptile", "protonet")


def cluster_episodes(tasks=8, ways=WAYS, shots=2, queries=3, seed=0):
    """Episodes whose classes are Gaussian clusters: learnable, so accuracy moves."""
    rng = np.random.default_rng(seed)
    support_x, support_y, query_x, query_y = [], [], [], []
    for _ in range(tasks):
        centers = 2.0 * rng.normal(size=(ways, FEATURES))
        s_labels = rng.permutation(np.repeat(np.arange(ways), shots))
        q_labels = rng.permutation(np.repeat(np.arange(ways), queries))
        support_x.append(centers[s_labels] + 0.5 * rng.normal(size=(ways * shots, FEATURES)))
        query_x.append(centers[q_labels] + 0.5 * rng.normal(size=(ways * queries, FEATURES)))
        support_y.append(s_labels)
        query_y.append(q_labels)
    inputs = {
        "support_x": np.asarray(support_x, "float32"),
        "support_y": np.asarray(support_y, "int32"),
        "query_x": np.asarray(query_x, "float32"),
    }
    return inputs, np.asarray(query_y, "int32")


def episode_dataset(tasks=8, meta_batch_size=2, seed=0, repeat=False):
    dataset = tf.data.Dataset.from_tensor_slices(cluster_episodes(tasks, seed=seed))
    dataset = dataset.batch(meta_batch_size, drop_remainder=True)
    return dataset.repeat() if repeat else dataset


def make_learner(kind, seed=0, optimizer=None):
    keras.utils.set_random_seed(seed)
    if kind == "protonet":
        learner = tfmeta.ProtoNet(tfmeta.backbones.mlp((FEATURES,), (16,), 8))
    elif kind == "maml":
        learner = tfmeta.MAML(tfmeta.backbones.mlp((FEATURES,), (16,), WAYS), inner_steps=1,
                              inner_learning_rate=0.1)
    else:
        learner = tfmeta.Reptile(tfmeta.backbones.mlp((FEATURES,), (16,), WAYS), inner_steps=2,
                                 inner_learning_rate=0.1)
    learner.compile(
        optimizer=optimizer or keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return learner


def weights(model):
    return [np.array(v) for v in model.get_weights()]
