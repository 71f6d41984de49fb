import pytest
import tensorflow as tf

from tfmeta import data
from tfmeta.cli import builders
from tfmeta.cli.experiment import Experiment


def test_lists_the_named_datasets():
    names = data.list_datasets()
    assert {"omniglot", "sinusoid"} <= set(names)
    assert list(names) == sorted(names)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"`dataset`.*omniglot.*Received: dataset='nope'"):
        data.get_dataset("nope")


def test_duplicate_registration_is_refused():
    spec = data.get_dataset("sinusoid")
    assert data.register(spec) is spec  # the same spec again is harmless
    other = data.DatasetSpec(name="sinusoid", build=spec.build, task="regression",
                             example="vector", example_shape=spec.example_shape)
    with pytest.raises(ValueError, match="already registered"):
        data.register(other)


def test_spec_rejects_options_it_does_not_have():
    with pytest.raises(ValueError, match=r"image_size"):
        data.get_dataset("sinusoid").episodes(
            "train", ways=1, shots=2, queries=2, meta_batch_size=1, image_size=28)


def test_sinusoid_splits_are_distinct_streams():
    spec = data.get_dataset("sinusoid")
    first = [next(iter(spec.episodes(split, ways=1, shots=3, queries=3, meta_batch_size=2)))
             for split in spec.splits]
    xs = [inputs["support_x"].numpy() for inputs, _ in first]
    assert not (xs[0] == xs[1]).all() and not (xs[1] == xs[2]).all()
    with pytest.raises(ValueError, match="`split`"):
        spec.episodes("nope", ways=1, shots=3, queries=3, meta_batch_size=2)


def test_cli_builders_use_the_registry():
    experiment = Experiment(dataset="sinusoid", backbone="mlp")
    assert builders.example_shape(experiment) == (1,)
    assert builders.example_shape(Experiment(image_size=32)) == (32, 32, 1)
    assert builders.dataset_options(Experiment()) == {"image_size": 28, "scheme": "vinyals"}
    dataset = builders.episodes(experiment, "test", ways=1, shots=4, queries=5,
                                meta_batch_size=2, seed=0)
    assert dataset.element_spec[1].shape == tf.TensorShape([2, 5, 1])
