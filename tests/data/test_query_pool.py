"""The episode sampler's separate query pool: support from a class's pool, queries from its
query pool (e.g. robot demonstrations from other starts), checked row by row."""

import numpy as np
import pytest
import tensorflow as tf

from tfmeta.data.sampling import EpisodeSampler

# Class c owns rows [10c, 10c + 4) as its pool and rows [100 + 10c, 100 + 10c + 3) as its
# query pool; class 2's query pool is smaller (2 rows).
OFFSETS = np.array([0, 10, 20])
SIZES = np.array([4, 4, 4])
QUERY_OFFSETS = np.array([100, 110, 120])
QUERY_SIZES = np.array([3, 3, 2])


def sampler(shots=3, queries=2, ways=1, **options):
    examples = np.arange(130, dtype=np.float32)[:, None]  # Each example is its own row.
    return EpisodeSampler(examples, offsets=OFFSETS, sizes=SIZES, ways=ways, shots=shots,
                          queries=queries, meta_batch_size=64, seed=3,
                          query_offsets=QUERY_OFFSETS, query_sizes=QUERY_SIZES, **options)


def test_support_rows_come_from_the_pool_and_query_rows_from_the_query_pool():
    draw = sampler()
    for index in range(3):
        inputs, _ = draw(tf.constant(index, tf.int64))
        indices = draw.describe(tf.constant(index, tf.int64))
        support = inputs["support_x"].numpy()[..., 0].astype(int)
        query = inputs["query_x"].numpy()[..., 0].astype(int)
        np.testing.assert_array_equal(support, indices.support_index.numpy())
        for classes, rows, query_rows in zip(indices.classes.numpy(), support, query):
            c = int(classes[0])
            assert set(rows) <= set(range(OFFSETS[c], OFFSETS[c] + SIZES[c]))
            assert set(query_rows) <= set(range(QUERY_OFFSETS[c],
                                                QUERY_OFFSETS[c] + QUERY_SIZES[c]))
            assert len(set(rows)) == 3 and len(set(query_rows)) == 2  # Distinct picks.


def test_every_allowed_query_row_is_drawn_and_the_draw_is_a_function_of_the_seed():
    draw = sampler(queries=1)
    seen = set()
    for index in range(20):
        first = draw.describe(tf.constant(index, tf.int64)).query_index.numpy()
        again = draw.describe(tf.constant(index, tf.int64)).query_index.numpy()
        np.testing.assert_array_equal(first, again)
        seen |= set(first.ravel().tolist())
    assert seen == {100, 101, 102, 110, 111, 112, 120, 121}


def test_the_classes_and_support_draws_are_those_of_the_plain_sampler():
    # The query pool adds a draw and changes none: classes and support picks stay the same.
    examples = np.arange(130, dtype=np.float32)[:, None]
    plain = EpisodeSampler(examples, offsets=OFFSETS, sizes=SIZES, ways=2, shots=2, queries=2,
                           meta_batch_size=8, seed=3)
    pooled = sampler(shots=2, queries=2, ways=2)
    pooled.meta_batch_size = plain.meta_batch_size
    for index in range(3):
        a = plain.describe(tf.constant(index, tf.int64))
        b = pooled.describe(tf.constant(index, tf.int64))
        np.testing.assert_array_equal(a.classes.numpy(), b.classes.numpy())
        np.testing.assert_array_equal(a.support_y.numpy(), b.support_y.numpy())
        np.testing.assert_array_equal(np.sort(a.support_index.numpy(), axis=1),
                                      np.sort(b.support_index.numpy(), axis=1))


def test_a_query_pool_needs_fixed_episode_sizes():
    with pytest.raises(ValueError, match="needs fixed ways, shots and queries") as error:
        sampler(shots=None, queries=None, ways=None)
    assert "\n" not in str(error.value)
