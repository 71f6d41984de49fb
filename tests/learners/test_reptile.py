"""Reptile's update against the mean of independently adapted weights."""

import keras
import numpy as np
import pytest
from episode_fixtures import (
    as_episodes,
    classification_episodes,
    model_weights,
    regression_episodes,
    tanh_mlp,
)
from reference import adapt, maml_meta_loss

import tfmeta

LR = 0.2


def reference_phi(params, inputs, steps):
    rates = [[LR] * steps] * len(params)
    return [adapt(params, sx, sy, steps, rates) for sx, sy, _, _ in
            as_episodes(inputs, inputs["support_y"])]


@pytest.mark.parametrize("steps", [1, 5])
def test_sgd_one_gives_the_mean_of_adapted_weights(float64, steps):
    model = tanh_mlp()
    learner = tfmeta.Reptile(model, inner_steps=steps, inner_learning_rate=LR)
    learner.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss="mse")
    inputs, query_y = regression_episodes(tasks=4)
    params = model_weights(model)
    phis = reference_phi(params, inputs, steps)

    logs = learner.train_on_batch(inputs, query_y, return_dict=True)

    for index, new in enumerate(model_weights(model)):
        np.testing.assert_allclose(new, np.mean([phi[index] for phi in phis], axis=0),
                                   rtol=1e-10, atol=1e-12)
    # The reported loss is the query loss of the adapted weights.
    expected_loss = maml_meta_loss(params, as_episodes(inputs, query_y), steps,
                                   [[LR] * steps] * 4)
    assert logs["loss"] == pytest.approx(expected_loss, rel=1e-9)


def test_meta_step_size_interpolates(float64):
    model = tanh_mlp()
    learner = tfmeta.Reptile(model, inner_steps=3, inner_learning_rate=LR)
    learner.compile(optimizer=keras.optimizers.SGD(learning_rate=0.25), loss="mse")
    inputs, query_y = regression_episodes(tasks=2)
    params = model_weights(model)
    phis = reference_phi(params, inputs, 3)
    learner.train_on_batch(inputs, query_y)
    for index, new in enumerate(model_weights(model)):
        mean_phi = np.mean([phi[index] for phi in phis], axis=0)
        np.testing.assert_allclose(new, params[index] + 0.25 * (mean_phi - params[index]),
                                   rtol=1e-10, atol=1e-12)


def test_anil_keeps_body_fixed(float64):
    model = tanh_mlp()
    learner = tfmeta.Reptile(model, inner_steps=2, inner_learning_rate=LR,
                             adapt_layers=["output"])
    learner.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss="mse")
    inputs, query_y = regression_episodes()
    before = model_weights(model)
    learner.train_on_batch(inputs, query_y)
    after = model_weights(model)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert not np.allclose(after[2], before[2])


def test_reptile_rejects_learned_rates():
    with pytest.raises(ValueError, match="learn_inner_learning_rate"):
        tfmeta.Reptile(tanh_mlp(), learn_inner_learning_rate="per_step")


@pytest.mark.parametrize("jit_compile", [False, True])
def test_conv4_trains_with_and_without_xla(jit_compile):
    keras.utils.set_random_seed(0)
    model = tfmeta.backbones.conv4((16, 16, 1), filters=4, num_classes=3)
    learner = tfmeta.Reptile(model, inner_steps=2, inner_learning_rate=0.1)
    learner.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    inputs, query_y = classification_episodes(shape=(16, 16, 1))
    inputs["query_x"], query_y = inputs["support_x"], inputs["support_y"]
    first = learner.train_on_batch(inputs, query_y, return_dict=True)
    for _ in range(10):
        last = learner.train_on_batch(inputs, query_y, return_dict=True)
    assert np.isfinite(last["loss"]) and last["loss"] < first["loss"]
    assert "accuracy_ci95" in last
