"""Batch normalisation in the inner loop and on the query set (see GradientLearner)."""

import keras
import numpy as np
import pytest
from episode_fixtures import regression_episodes

import tfmeta


def bn_model(features=2):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((features,)), keras.layers.BatchNormalization(momentum=0.9),
         keras.layers.Dense(1)]
    )


@pytest.mark.parametrize("learner_class", [tfmeta.MAML, tfmeta.Reptile])
def test_moving_statistics_follow_query_batches_not_inner_steps(learner_class):
    model = bn_model()
    learner = learner_class(model, inner_steps=3, inner_learning_rate=0.1)
    learner.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    inputs, query_y = regression_episodes(dtype="float32")
    # Support and query differ in scale, so support statistics would show.
    inputs["support_x"] = inputs["support_x"] * 10.0 + 5.0

    learner.train_on_batch(inputs, query_y)

    bn = model.layers[0]
    query = inputs["query_x"]
    expected_mean = 0.1 * np.mean(query.mean(axis=1), axis=0)
    expected_var = 0.9 + 0.1 * np.mean(query.var(axis=1), axis=0)
    np.testing.assert_allclose(bn.moving_mean.numpy(), expected_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), expected_var, rtol=1e-5)


@pytest.mark.parametrize("learner_class", [tfmeta.MAML, tfmeta.Reptile])
def test_evaluate_and_predict_assign_no_variable(learner_class):
    model = bn_model()
    learner = learner_class(model, inner_steps=2, inner_learning_rate=0.1, eval_inner_steps=4)
    learner.compile(optimizer="sgd", loss="mse")
    inputs, query_y = regression_episodes(dtype="float32")
    before = [v.numpy().copy() for v in model.variables]
    learner.evaluate(inputs, query_y, verbose=0)
    learner.predict(inputs, verbose=0)
    for variable, old in zip(model.variables, before):
        np.testing.assert_array_equal(variable.numpy(), old)


@pytest.mark.parametrize("transductive", [True, False])
def test_transductive_uses_each_query_sets_statistics(transductive):
    model = bn_model()
    model.layers[0].moving_mean.assign([3.0, -3.0])  # Distinguishable from batch statistics.
    learner = tfmeta.MAML(model, inner_steps=1, inner_learning_rate=1e-12,
                          transductive=transductive)
    learner.compile(optimizer="sgd", loss="mse")
    inputs, _ = regression_episodes(dtype="float32")

    predictions = learner.predict_on_batch(inputs)

    for task, query in enumerate(inputs["query_x"]):
        # With a negligible inner step the adapted model is the model itself.
        expected = model(query, training=transductive).numpy()
        np.testing.assert_allclose(predictions[task], expected, rtol=1e-4, atol=1e-5)
