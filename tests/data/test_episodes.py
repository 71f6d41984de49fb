"""The episode sampler on synthetic data whose every example is identifiable."""

import importlib
import itertools

import numpy as np
import pytest
import tensorflow as tf

from tfmeta.data import episodes

sampling = importlib.import_module("tfmeta.data.sampling")

NUM_CLASSES, PER_CLASS = 12, 10


def identifiable(num_classes=NUM_CLASSES, per_class=PER_CLASS):
    """[C, E, 1] float32 with value class * 1000 + index."""
    values = np.arange(num_classes)[:, None] * 1000 + np.arange(per_class)[None, :]
    return values.astype("float32")[..., None]


def take(dataset, count):
    return [tf.nest.map_structure(lambda t: t.numpy(), e) for e in dataset.take(count)]


def decode(values):
    values = np.asarray(values).reshape(values.shape[:2]).astype(int)
    return values // 1000, values % 1000


@pytest.fixture(scope="module")
def batches():
    dataset = episodes(identifiable(), ways=5, shots=2, queries=3, meta_batch_size=8, seed=3)
    return take(dataset, 4)


def test_contract_keys_shapes_dtypes_and_static_spec():
    dataset = episodes(identifiable(), ways=5, shots=2, queries=3, meta_batch_size=8)
    inputs_spec, query_y_spec = dataset.element_spec
    assert set(inputs_spec) == {"support_x", "support_y", "query_x"}
    assert inputs_spec["support_x"] == tf.TensorSpec([8, 10, 1], tf.float32)
    assert inputs_spec["support_y"] == tf.TensorSpec([8, 10], tf.int32)
    assert inputs_spec["query_x"] == tf.TensorSpec([8, 15, 1], tf.float32)
    assert query_y_spec == tf.TensorSpec([8, 15], tf.int32)
    assert dataset.cardinality() == tf.data.INFINITE_CARDINALITY
    element = next(iter(dataset))
    assert isinstance(element, tuple) and len(element) == 2


def test_labels_are_0_to_n_minus_1_k_and_q_times(batches):
    for inputs, query_y in batches:
        for support_y, q_y in zip(inputs["support_y"], query_y):
            np.testing.assert_array_equal(np.bincount(support_y, minlength=5), [2] * 5)
            np.testing.assert_array_equal(np.bincount(q_y, minlength=5), [3] * 5)


def test_classes_distinct_labels_consistent_and_sets_disjoint(batches):
    for inputs, query_y in batches:
        s_class, s_index = decode(inputs["support_x"])
        q_class, q_index = decode(inputs["query_x"])
        for b in range(len(query_y)):
            label_to_class = {}
            for labels, classes in ((inputs["support_y"][b], s_class[b]), (query_y[b], q_class[b])):
                for label, cls in zip(labels, classes):
                    assert label_to_class.setdefault(label, cls) == cls
            assert len(set(label_to_class.values())) == 5  # N distinct classes
            support = set(zip(s_class[b], s_index[b]))
            query = set(zip(q_class[b], q_index[b]))
            assert len(support) == 10 and len(query) == 15  # no repeats within a set
            assert not support & query  # no example in both


def test_label_mapping_is_random_and_support_not_sorted(batches):
    ranks = set()
    sorted_supports = 0
    for inputs, _ in batches:
        s_class, _ = decode(inputs["support_x"])
        for labels, classes in zip(inputs["support_y"], s_class):
            mapping = dict(zip(labels, classes))
            ranks.add(tuple(np.argsort([mapping[j] for j in range(5)])))
            sorted_supports += bool(np.all(np.diff(labels) >= 0))
    assert len(ranks) > 10  # label order vs class order varies across 32 episodes
    assert sorted_supports <= 2


def test_every_class_and_example_is_used():
    dataset = episodes(identifiable(), ways=4, shots=1, queries=1, meta_batch_size=16)
    seen = set()
    for inputs, _ in take(dataset, 20):
        seen.update(zip(*(a.ravel() for a in decode(inputs["support_x"]))))
    assert {cls for cls, _ in seen} == set(range(NUM_CLASSES))
    assert len(seen) > 0.9 * NUM_CLASSES * PER_CLASS


def test_same_seed_same_episodes_different_seed_different():
    def stream(seed):
        return take(episodes(identifiable(), 5, 1, 2, 4, seed=seed), 3)

    first, again, other = stream(7), stream(7), stream(8)
    for a, b in zip(first, again):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(first[0][0]["support_x"], other[0][0]["support_x"])
    assert not np.array_equal(first[0][0]["support_x"], first[1][0]["support_x"])


def test_per_class_arrays_of_different_sizes():
    sizes = [3, 4, 5, 6, 9, 40]
    arrays = [np.array([[c * 1000 + i] for i in range(n)], "float32") for c, n in enumerate(sizes)]
    dataset = episodes(arrays, ways=6, shots=1, queries=2, meta_batch_size=16, seed=1)
    used = set()
    for inputs, _ in take(dataset, 10):
        for x in (inputs["support_x"], inputs["query_x"]):
            classes, index = decode(x)
            assert np.all(index < np.array(sizes)[classes])
            used.update(zip(classes.ravel(), index.ravel()))
    assert {(5, i) for i in range(40)} <= used  # the big class is sampled throughout


def test_uint8_examples_are_cast_not_rescaled_and_float64_is_stored_as_float32():
    data = np.full([3, 4, 2, 2, 1], 200, np.uint8)
    inputs, _ = next(iter(episodes(data, 2, 1, 1, 2)))
    assert inputs["support_x"].dtype == tf.float32
    assert np.all(inputs["support_x"].numpy() == 200.0)
    inputs, _ = next(iter(episodes(identifiable().astype("float64"), 2, 1, 1, 2)))
    assert inputs["query_x"].dtype == tf.float32


def test_tf_tensor_input():
    inputs, _ = next(iter(episodes(tf.constant(identifiable()), 3, 1, 1, 2)))
    assert inputs["support_x"].shape == (2, 3, 1)


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_rotate_quarter_turns_matches_np_rot90(turns):
    images = np.random.default_rng(0).integers(0, 255, [2, 3, 5, 5, 2]).astype(np.uint8)
    rotated = sampling.rotate_quarter_turns(tf.constant(images), tf.fill([2, 3], turns)).numpy()
    np.testing.assert_array_equal(rotated, np.rot90(images, turns, axes=(2, 3)))


def test_rotations_make_new_classes():
    base = np.arange(4 * 5 * 9, dtype="float32").reshape(4, 5, 3, 3)
    originals = {
        tuple(image.ravel()): (c, i) for c, row in enumerate(base) for i, image in enumerate(row)
    }
    dataset = episodes(
        base, ways=16, shots=1, queries=2, meta_batch_size=4, rotations=(0, 90, 180, 270)
    )
    inputs, query_y = next(iter(dataset))
    for b in range(4):
        classes = {}
        for x, y in (
            (inputs["support_x"][b], inputs["support_y"][b]),
            (inputs["query_x"][b], query_y[b]),
        ):
            for image, label in zip(x.numpy(), y.numpy()):
                for k in range(4):
                    key = tuple(np.rot90(image, -k).ravel())
                    if key in originals:
                        cls = (originals[key][0], k)
                        break
                else:
                    raise AssertionError("an example is no rotation of an original")
                assert classes.setdefault(label, cls) == cls
        assert sorted(classes.values()) == list(itertools.product(range(4), range(4)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"ways": 13},
            r"`ways`: expected an integer between 1 and 12 \(the number of classes.*ways=13",
        ),
        ({"ways": 0}, r"`ways`: expected an integer between 1 and 12.*Received: ways=0"),
        ({"ways": 2.5}, "Received: ways=2.5"),
        ({"ways": True}, "Received: ways=True"),
        ({"shots": 0}, r"`shots`: expected a positive integer. Received: shots=0"),
        ({"queries": -1}, r"`queries`: expected a positive integer. Received: queries=-1"),
        ({"meta_batch_size": 0}, r"`meta_batch_size`: expected a positive integer"),
        ({"shots": 5, "queries": 6}, r"shots \+ queries to be at most 10.*shots=5, queries=6"),
        ({"seed": "a"}, r"`seed`: expected an integer between .* Received: seed='a'"),
        ({"rotations": (0, 45)}, r"`rotations`: expected a sequence of distinct angles"),
        ({"rotations": (90, 90)}, r"`rotations`: expected a sequence of distinct angles"),
    ],
)
def test_bad_arguments_raise_eagerly(kwargs, match):
    arguments = {"ways": 5, "shots": 1, "queries": 1, "meta_batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        episodes(identifiable(), **arguments)


def test_bad_class_examples():
    with pytest.raises(ValueError, match="`class_examples`"):
        episodes(np.zeros([0, 5, 1]), 1, 1, 1, 1)
    with pytest.raises(ValueError, match="`class_examples`: expected a non-empty sequence"):
        episodes([], 1, 1, 1, 1)
    with pytest.raises(ValueError, match="one example shape"):
        episodes([np.zeros([3, 2]), np.zeros([3, 4])], 1, 1, 1, 1)
    with pytest.raises(ValueError, match="`rotations`: expected None for non-square"):
        episodes(np.zeros([3, 4, 2, 3]), 2, 1, 1, 1, rotations=(0, 90))
    with pytest.raises(ValueError, match=r"at most 3 \(the size of the smallest class\)"):
        episodes([np.zeros([3, 1]), np.zeros([9, 1])], 2, 2, 2, 1)


def test_string_examples_stay_strings_and_keep_their_classes():
    classes = [np.array([f"class{c} sentence {i}" for i in range(4 + c)]) for c in range(5)]
    dataset = episodes(classes, ways=3, shots=1, queries=2, meta_batch_size=2, seed=3)
    inputs, query_y = next(iter(dataset))
    assert inputs["support_x"].dtype == tf.string and inputs["support_x"].shape == (2, 3)
    assert inputs["query_x"].dtype == tf.string and inputs["query_x"].shape == (2, 6)
    for b in range(2):
        owner = {}
        for sentence, label in zip(inputs["support_x"][b].numpy(), inputs["support_y"][b]):
            owner[int(label)] = sentence.decode().split()[0]
        for sentence, label in zip(inputs["query_x"][b].numpy(), query_y[b]):
            assert sentence.decode().split()[0] == owner[int(label)]
