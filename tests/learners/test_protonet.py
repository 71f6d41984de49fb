"""ProtoNet end to end: logits against NumPy, training, XLA, bad input."""

import keras
import numpy as np
import pytest
from episode_fixtures import classification_episodes

import tfmeta


def identity_encoder(shape=(3,)):
    return keras.Sequential([keras.Input(shape), keras.layers.Flatten()])


def test_logits_are_minus_squared_distances_to_prototypes():
    inputs, _ = classification_episodes(tasks=2, ways=4, shots=3, queries=2, shape=(3,))
    learner = tfmeta.ProtoNet(identity_encoder())
    logits = learner.predict_on_batch(inputs)
    for b in range(2):
        support, labels = inputs["support_x"][b], inputs["support_y"][b]
        prototypes = np.stack([support[labels == c].mean(0) for c in range(4)])
        expected = -((inputs["query_x"][b][:, None] - prototypes[None]) ** 2).sum(-1)
        np.testing.assert_allclose(logits[b], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_conv4_protonet_fits_evaluates_predicts(jit_compile):
    keras.utils.set_random_seed(0)
    learner = tfmeta.ProtoNet(tfmeta.backbones.conv4((16, 16, 1), filters=8), ways=3)
    learner.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    inputs, query_y = classification_episodes(tasks=4, shape=(16, 16, 1))
    # A learnable signal: each class is a bright patch in its own place.
    for key, labels in [("support_x", inputs["support_y"]), ("query_x", query_y)]:
        for b in range(4):
            for i, label in enumerate(labels[b]):
                inputs[key][b, i, label * 5:label * 5 + 5, :, 0] += 3.0
    history = learner.fit(inputs, query_y, epochs=15, batch_size=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    results = learner.evaluate(inputs, query_y, verbose=0, return_dict=True)
    assert results["accuracy"] > 0.9 and "accuracy_ci95" in results
    assert learner.predict(inputs, verbose=0, batch_size=2).shape == (4, 6, 3)


def test_ways_from_episode_without_xla():
    learner = tfmeta.ProtoNet(identity_encoder())
    learner.compile(optimizer="adam",
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert learner.jit_compile is False
    for ways in (2, 5):
        inputs, query_y = classification_episodes(tasks=1, ways=ways, shape=(3,))
        assert learner.predict_on_batch(inputs).shape == (1, ways * 2, ways)
    with pytest.raises(ValueError, match="ways"):
        learner.compile(optimizer="adam", loss="mse", jit_compile=True)


def test_bad_input():
    with pytest.raises(ValueError, match="encoder"):
        tfmeta.ProtoNet(keras.Sequential([keras.layers.Dense(3)]))
    learner = tfmeta.ProtoNet(identity_encoder())
    inputs, _ = classification_episodes(tasks=1, ways=3, shape=(3,))
    bad = dict(inputs, support_y=np.where(inputs["support_y"] == 0, 5, inputs["support_y"]))
    with pytest.raises(ValueError, match=r"`support_y` labels must be in 0\.\.2") as info:
        tfmeta.ProtoNet(identity_encoder(), ways=3).predict_on_batch(bad)
    assert "\n" not in str(info.value)  # one line, not a graph trace
    with pytest.raises(ValueError, match="support_labels"):
        tfmeta.ProtoNet(identity_encoder(), ways=3)(bad)  # Eagerly: a ValueError.
    with pytest.raises(ValueError, match="support_y"):
        learner.predict_on_batch({"support_x": inputs["support_x"], "query_x": inputs["query_x"]})
