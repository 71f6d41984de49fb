"""Variable-way, variable-shot episodes (Meta-Dataset's rules) of the one episode sampler.

The rules are re-derived here in NumPy (float64, as Meta-Dataset's code) from the sampler's
own random draws, and the draws are checked against their distributions on large samples
with fixed seeds. Statistical thresholds are at p = 0.001 (chi-square critical values from
tables; Kolmogorov-Smirnov 1.95 / sqrt(n)), so with fixed seeds the tests are deterministic
and a correct sampler passes them with a wide margin.
"""

import importlib
import math

import numpy as np
import pytest
import tensorflow as tf

from tfmeta.data import episodes

sampling = importlib.import_module("tfmeta.data.sampling")
episode_shape = importlib.import_module("tfmeta.data.episode_shape")

# Chi-square critical values at p = 0.001 for the degrees of freedom used below.
CHI2_999 = {9: 27.877, 45: 80.077}


def ks_statistic(samples, cdf):
    samples = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(samples)
    theoretical = cdf(samples)
    return max(np.max(np.arange(1, n + 1) / n - theoretical),
               np.max(theoretical - np.arange(n) / n))


def chi_square(counts, expected):
    counts, expected = np.asarray(counts, float), np.asarray(expected, float)
    return float(((counts - expected) ** 2 / expected).sum())


def identifiable_classes(sizes):
    """Per-class arrays whose every example is class * 1000 + index, as float32 [n, 1]."""
    return [np.arange(n, dtype=np.float32)[:, None] + 1000.0 * c for c, n in enumerate(sizes)]


def make_sampler(sizes, ways=None, shots=None, queries=None, meta_batch_size=64, seed=0, **kw):
    examples = np.concatenate(identifiable_classes(sizes))
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return sampling.EpisodeSampler(examples, offsets, np.asarray(sizes), ways, shots, queries,
                                   meta_batch_size, seed, **kw)


def reference_sizes(class_sizes, ways, beta, log_weights, shots=None, queries=None,
                    max_support=500, max_queries=10):
    """Meta-Dataset's rules in NumPy for one episode of classes of sizes `class_sizes`."""
    n = np.asarray(class_sizes[:ways], dtype=np.int64)
    if queries is None:
        queries = min(max_queries, n.min() // 2) if shots is None else min(
            max_queries, n.min() - shots)
    if shots is not None:
        return np.full(ways, shots), queries
    remaining = n - queries
    support_size = min(np.floor(beta * np.minimum(100, remaining) + 1).sum(), max_support)
    weights = n * np.exp(log_weights[:ways])
    proportions = weights / weights.sum()
    shots = np.minimum(np.floor(proportions * (support_size - ways)).astype(np.int64) + 1,
                       remaining)
    return shots, queries


def episode_counts(labels, width):
    """Per-class counts of each episode's real (label >= 0) entries, [B, width]."""
    labels = np.asarray(labels)
    return np.stack([np.bincount(row[row >= 0], minlength=width) for row in labels])


@pytest.fixture(scope="module")
def uneven():
    """60 classes of 4 to 240 examples, 8 batches of 64 variable episodes."""
    sizes = np.random.default_rng(0).integers(4, 241, size=60)
    sampler = make_sampler(sizes, meta_batch_size=64, seed=7)
    batches = []
    for index in range(8):
        inputs, query_y = sampler(tf.constant(index, tf.int64))
        drawn = sampler.draw_sizes(tf.constant(index, tf.int64))
        batches.append((tf.nest.map_structure(np.asarray, inputs), np.asarray(query_y),
                        tf.nest.map_structure(np.asarray, drawn)))
    return sizes, sampler, batches


def test_shots_and_queries_follow_meta_datasets_rules_exactly(uneven):
    sizes, sampler, batches = uneven
    width = sampler.shape.max_ways
    for inputs, query_y, drawn in batches:
        support = episode_counts(inputs["support_y"], width)
        query = episode_counts(query_y, width)
        for b in range(len(query_y)):
            ways = int(drawn.ways[b])
            shots, queries = reference_sizes(sizes[drawn.classes[b]], ways, drawn.beta[b],
                                             drawn.log_weights[b])
            np.testing.assert_array_equal(support[b, :ways], shots)
            np.testing.assert_array_equal(support[b, ways:], 0)
            np.testing.assert_array_equal(query[b, :ways], queries)
            np.testing.assert_array_equal(query[b, ways:], 0)


def test_bounds_examples_disjoint_and_from_the_right_class(uneven):
    sizes, sampler, batches = uneven
    assert sampler.shape.support_size == 500 and sampler.shape.query_size == 500
    for inputs, query_y, drawn in batches:
        for b in range(len(query_y)):
            ways = int(drawn.ways[b])
            n = sizes[drawn.classes[b, :ways]]
            s_y, q_y = inputs["support_y"][b], query_y[b]
            s_x, q_x = inputs["support_x"][b, :, 0], inputs["query_x"][b, :, 0]
            real_s, real_q = s_y >= 0, q_y >= 0
            assert 5 <= ways <= 50 and ways <= real_s.sum() <= 500
            # Real entries first, then padding: label -1 and a zero example.
            assert not real_s[np.argmin(real_s):].any() if not real_s.all() else True
            assert (s_x[~real_s] == 0).all() and (q_x[~real_q] == 0).all()
            counts = np.bincount(s_y[real_s], minlength=ways)
            q = np.bincount(q_y[real_q], minlength=ways)
            assert (counts >= 1).all() and (counts + q <= n).all()
            assert q.min() == q.max() == min(10, n.min() // 2)
            # Each example belongs to its label's class; no example is used twice.
            for x, y in ((s_x[real_s], s_y[real_s]), (q_x[real_q], q_y[real_q])):
                np.testing.assert_array_equal(x // 1000, drawn.classes[b][y])
            used = np.concatenate([s_x[real_s], q_x[real_q]])
            assert len(np.unique(used)) == len(used)


def test_random_draws_follow_their_distributions():
    sizes = np.full(100, 20)
    sampler = make_sampler(sizes, meta_batch_size=500, seed=3)
    drawn = [sampler.draw_sizes(tf.constant(i, tf.int64)) for i in range(8)]
    ways = np.concatenate([d.ways.numpy() for d in drawn])  # 4,000 episodes
    counts = np.bincount(ways, minlength=51)[5:]
    assert ways.min() >= 5 and ways.max() <= 50
    assert chi_square(counts, np.full(46, len(ways) / 46)) < CHI2_999[45]
    beta = np.concatenate([d.beta.numpy() for d in drawn])
    assert ks_statistic(beta, lambda x: x) < 1.95 / math.sqrt(len(beta))
    low, high = math.log(0.5), math.log(2.0)
    log_weights = np.concatenate(
        [d.log_weights.numpy()[d.ways.numpy()[:, None] > np.arange(50)] for d in drawn])
    assert low <= log_weights.min() and log_weights.max() < high
    assert ks_statistic(log_weights, lambda x: (x - low) / (high - low)) < 1.95 / math.sqrt(
        len(log_weights))
    # Classes: each of the 100 equally often over all the episodes' slots.
    classes = np.concatenate(
        [d.classes.numpy()[d.ways.numpy()[:, None] > np.arange(50)] for d in drawn])
    class_counts = np.bincount(classes, minlength=100)
    expected = np.full(100, len(classes) / 100)
    assert chi_square(class_counts, expected) < 148.23  # chi-square(99) at p = 0.001


def test_support_size_over_ways_is_uniform_for_equal_classes():
    # 20 examples a class: q = 10, so |S| = N * floor(10 * beta + 1), uniform N * {1..10}.
    sampler = make_sampler(np.full(100, 20), meta_batch_size=500, seed=5)
    ratios = []
    for index in range(4):
        drawn = sampler.draw_sizes(tf.constant(index, tf.int64))
        support_size, ways = drawn.support_size.numpy(), drawn.ways.numpy()
        assert (support_size % ways == 0).all()
        ratios.append(support_size // ways)
    ratios = np.concatenate(ratios)
    assert ratios.min() >= 1 and ratios.max() <= 10
    counts = np.bincount(ratios, minlength=11)[1:]
    assert chi_square(counts, np.full(10, len(ratios) / 10)) < CHI2_999[9]


def test_fixed_ways_with_variable_shots_and_fixed_queries():
    sizes = np.random.default_rng(1).integers(8, 60, size=20)
    sampler = make_sampler(sizes, ways=5, shots=None, queries=3, meta_batch_size=32, seed=2)
    assert sampler.shape.query_size == 15 and sampler.shape.max_ways == 5
    inputs, query_y = sampler(tf.constant(0, tf.int64))
    drawn = sampler.draw_sizes(tf.constant(0, tf.int64))
    support = episode_counts(inputs["support_y"], 5)
    np.testing.assert_array_equal(episode_counts(query_y, 5), 3)
    for b in range(32):
        shots, _ = reference_sizes(sizes[drawn.classes[b].numpy()], 5, drawn.beta[b].numpy(),
                                   drawn.log_weights[b].numpy(), queries=3)
        np.testing.assert_array_equal(support[b], shots)


def test_fixed_shots_with_variable_ways_and_queries():
    sizes = np.full(30, 12)
    sampler = make_sampler(sizes, ways=None, shots=2, queries=None, meta_batch_size=16)
    assert sampler.shape.support_size == 60 and sampler.shape.query_size == 300
    inputs, query_y = sampler(tf.constant(0, tf.int64))
    ways = sampler.draw_sizes(tf.constant(0, tf.int64)).ways.numpy()
    for b in range(16):
        np.testing.assert_array_equal(
            episode_counts(inputs["support_y"], 30)[b], [2] * ways[b] + [0] * (30 - ways[b]))
        # q = min(10, min_c n_c - shots) = 10.
        assert (episode_counts(query_y, 30)[b, :ways[b]] == 10).all()


def test_seed_determines_the_episodes():
    data = identifiable_classes(np.full(30, 20))
    first, again, other = (
        next(iter(episodes(data, None, None, None, meta_batch_size=4, seed=seed)))
        for seed in (1, 1, 2))
    for key in ("support_x", "support_y", "query_x"):
        np.testing.assert_array_equal(first[0][key], again[0][key])
    assert not np.array_equal(first[0]["support_y"], other[0]["support_y"])


def test_public_entry_point_static_spec_and_text_padding():
    sentences = [np.array([f"class {c} sentence {i}" for i in range(12)], dtype=object)
                 for c in range(8)]
    dataset = episodes(sentences, ways=None, shots=None, queries=None, meta_batch_size=2,
                       max_ways=6, max_support=40, max_queries=4)
    inputs_spec, query_spec = dataset.element_spec
    assert inputs_spec["support_x"] == tf.TensorSpec([2, 40], tf.string)
    assert query_spec == tf.TensorSpec([2, 24], tf.int32)
    inputs, query_y = next(iter(dataset))
    support_x, support_y = inputs["support_x"].numpy(), inputs["support_y"].numpy()
    assert (support_x[support_y < 0] == b"").all() and (support_x[support_y >= 0] != b"").all()
    assert (query_y.numpy() >= -1).all()


def test_fixed_episodes_are_unchanged_by_the_variable_path():
    # ways, shots and queries all fixed: no padding, the sampler's fixed path.
    sampler = make_sampler(np.full(10, 6), ways=3, shots=1, queries=2, meta_batch_size=2)
    assert not sampler.shape.variable
    inputs, query_y = sampler(tf.constant(0, tf.int64))
    assert inputs["support_y"].shape == (2, 3) and query_y.shape == (2, 6)
    assert (inputs["support_y"].numpy() >= 0).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_ways": 4}, r"`max_ways`: expected an integer between 5 and 30 .*max_ways=4"),
        ({"max_ways": 31}, r"`max_ways`: expected an integer between 5 and 30 .*max_ways=31"),
        ({"max_ways": 2.5}, r"`max_ways`: expected an integer.*max_ways=2.5"),
        ({"max_support": 20}, r"`max_support`: expected an integer >= 30 .*max_support=20"),
        ({"max_queries": 0}, r"`max_queries`: expected a positive integer.*max_queries=0"),
        ({"shots": 0}, r"`shots`: expected a positive integer. Received: shots=0"),
        ({"queries": 20}, r"`shots` and `queries`: every class needs at least 21 examples"),
    ],
)
def test_bad_variable_arguments_fail_in_one_line(kwargs, message):
    arguments = {"ways": None, "shots": None, "queries": None, **kwargs}
    with pytest.raises(ValueError, match=message) as error:
        episodes(identifiable_classes(np.full(30, 20)), meta_batch_size=2, **arguments)
    assert "\n" not in str(error.value)


def test_variable_ways_need_five_classes_and_two_examples_a_class():
    with pytest.raises(ValueError, match=r"`ways`: .*ways=None samples 5 or more ways.*4 classes"):
        episodes(identifiable_classes(np.full(4, 20)), None, 1, 1, meta_batch_size=1)
    with pytest.raises(ValueError, match=r"at least 2 examples.*the smallest has 1"):
        episodes(identifiable_classes([1] + [20] * 9), None, None, None, meta_batch_size=1)


def test_the_registry_passes_the_variable_options(fake_root):
    from tfmeta.data.registry import get_dataset

    spec = get_dataset("omniglot")
    assert set(episode_shape.VARIABLE_OPTIONS) <= set(spec.all_options)
    dataset = spec.episodes("train", ways=None, shots=None, queries=None, meta_batch_size=1,
                            data_dir=fake_root, max_ways=5, max_support=30, max_queries=2)
    inputs, query_y = next(iter(dataset))
    assert inputs["support_x"].shape == (1, 30, 28, 28, 1) and query_y.shape == (1, 10)
    with pytest.raises(ValueError, match=r"\['max_ways'\] are not among its options"):
        get_dataset("sinusoid").episodes("train", ways=None, shots=5, queries=5,
                                         meta_batch_size=1, max_ways=5)
