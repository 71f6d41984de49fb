"""The opt-in mixed_bfloat16 policy (benchmarks/RESULTS.md measures its speed and accuracy)."""

import keras
import numpy as np
import pytest
from episode_fixtures import classification_episodes

import tfmeta


@pytest.fixture
def mixed_bfloat16():
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy("float32")


def small_conv4(num_classes=None):
    return tfmeta.backbones.conv4((16, 16, 1), filters=4, num_classes=num_classes)


def test_protonet_keeps_distances_in_float32(mixed_bfloat16):
    learner = tfmeta.ProtoNet(small_conv4(), ways=3)
    learner.compile(optimizer="adam",
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs, query_y = classification_episodes(shape=(16, 16, 1))
    assert learner.encoder.compute_dtype == "bfloat16"
    assert learner.prototype_logits.compute_dtype == "float32"
    assert learner(inputs).dtype == "float32"
    loss = learner.train_on_batch(inputs, query_y)
    assert np.isfinite(loss)
    assert all(v.dtype == "float32" for v in learner.trainable_variables)


@pytest.mark.parametrize("first_order", [False, True])
def test_maml_trains_in_mixed_bfloat16(mixed_bfloat16, first_order):
    learner = tfmeta.MAML(small_conv4(num_classes=3), inner_learning_rate=0.4,
                          first_order=first_order)
    learner.compile(optimizer="adam",
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs, query_y = classification_episodes(shape=(16, 16, 1))
    before = [v.numpy().copy() for v in learner.model.trainable_variables]
    loss = learner.train_on_batch(inputs, query_y)
    assert np.isfinite(loss)
    assert all(v.dtype == "float32" for v in learner.model.trainable_variables)
    assert any(not np.array_equal(v.numpy(), b)
               for v, b in zip(learner.model.trainable_variables, before))
