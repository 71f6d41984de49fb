"""PrototypeLogits against a NumPy computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmeta.layers import PrototypeLogits


def numpy_logits(support, labels, queries, ways, distance="squared_euclidean", scale=10.0):
    logits = np.zeros((len(support), queries.shape[1], ways))
    for b in range(len(support)):
        prototypes = np.stack([support[b][labels[b] == c].mean(axis=0) for c in range(ways)])
        if distance == "cosine":
            q = queries[b] / np.linalg.norm(queries[b], axis=-1, keepdims=True)
            p = prototypes / np.linalg.norm(prototypes, axis=-1, keepdims=True)
            logits[b] = scale * q @ p.T
        else:
            logits[b] = -((queries[b][:, None, :] - prototypes[None]) ** 2).sum(-1)
    return logits


def random_episode(ways, shots, queries=4, tasks=3, features=7, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.stack([rng.permutation(np.repeat(np.arange(ways), shots)) for _ in range(tasks)])
    support = rng.normal(size=(tasks, ways * shots, features)).astype("float32")
    query = rng.normal(size=(tasks, queries, features)).astype("float32")
    return support, labels.astype("int32"), query


@pytest.mark.parametrize("ways, shots", [(2, 1), (5, 1), (5, 5), (20, 3)])
@pytest.mark.parametrize("given_ways", [True, False])
def test_squared_euclidean_matches_numpy(ways, shots, given_ways):
    support, labels, query = random_episode(ways, shots)
    layer = PrototypeLogits(ways=ways if given_ways else None)
    got = layer(support, labels, query).numpy()
    np.testing.assert_allclose(got, numpy_logits(support, labels, query, ways), rtol=1e-4,
                               atol=1e-4)


def test_cosine_matches_numpy_and_scale_can_learn():
    support, labels, query = random_episode(4, 2)
    fixed = PrototypeLogits(ways=4, distance="cosine", scale=3.0)
    np.testing.assert_allclose(
        fixed(support, labels, query).numpy(),
        numpy_logits(support, labels, query, 4, "cosine", 3.0), rtol=1e-5, atol=1e-5)
    assert not fixed.trainable_weights
    learned = PrototypeLogits(ways=4, distance="cosine", scale=3.0, learn_scale=True)
    learned(support, labels, query)
    assert len(learned.trainable_weights) == 1


def test_single_episode_and_graph_mode():
    support, labels, query = random_episode(3, 2, tasks=1)
    layer = PrototypeLogits(ways=3)
    single = layer(support[0], labels[0], query[0]).numpy()
    assert single.shape == (4, 3)
    graph = tf.function(lambda s, y, q: layer(s, y, q), jit_compile=True)(support, labels, query)
    np.testing.assert_allclose(single, graph.numpy()[0], rtol=1e-5, atol=1e-5)


def test_config_round_trip():
    layer = PrototypeLogits(ways=5, distance="cosine", scale=2.0, learn_scale=True)
    clone = PrototypeLogits.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, PrototypeLogits) and restored.ways == 5


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda s, y, q: (s, np.where(y == 0, 7, y), q), "0..2"),
        (lambda s, y, q: (s, np.where(y == 0, -2, y), q), "0..2"),
        # -1 is padding, but class 0 is then missing below the largest label.
        (lambda s, y, q: (s, np.where(y == 0, -1, y), q), "classes \\[0\\]"),
        (lambda s, y, q: (s, np.where(y == 2, 1, y), q), "no support example|classes \\[2\\]"),
        (lambda s, y, q: (s[..., None], y, q), "support_embeddings"),
        (lambda s, y, q: (s, y, q[0]), "query_embeddings"),
        (lambda s, y, q: (s, y[:, :-1], q), "support_labels"),
    ],
)
def test_bad_input(mutate, match):
    support, labels, query = random_episode(3, 2)
    with pytest.raises(ValueError, match=match):
        PrototypeLogits(ways=3)(*mutate(support, labels, query))


def test_bad_arguments():
    with pytest.raises(ValueError, match="distance"):
        PrototypeLogits(distance="manhattan")
    with pytest.raises(ValueError, match="ways"):
        PrototypeLogits(ways=0)
