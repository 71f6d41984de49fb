"""Batch normalisation in the inner loop and on the query set (see GradientLearner)."""

import warnings

import keras
import numpy as np
import pytest
from episode_fixtures import (
    as_episodes,
    classification_episodes,
    meta_gradients,
    model_weights,
    regression_episodes,
)
from reference import bn_maml_meta_loss, finite_difference

import tfmeta

BATCH_NORMS = pytest.mark.parametrize(
    "bn_class", [tfmeta.layers.BatchNormalization, keras.layers.BatchNormalization]
)
# These tests check the moving statistics of both layers; the gradients are not the point.
pytestmark = pytest.mark.filterwarnings("ignore:Layer .* is a keras.layers.BatchNormalization")


def bn_model(bn_class, features=2):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((features,)), bn_class(momentum=0.9), keras.layers.Dense(1)]
    )


@pytest.mark.parametrize("learner_class", [tfmeta.MAML, tfmeta.Reptile])
@BATCH_NORMS
def test_moving_statistics_follow_query_batches_not_inner_steps(learner_class, bn_class):
    model = bn_model(bn_class)
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
@BATCH_NORMS
def test_evaluate_and_predict_assign_no_variable(learner_class, bn_class):
    model = bn_model(bn_class)
    learner = learner_class(model, inner_steps=2, inner_learning_rate=0.1, eval_inner_steps=4)
    learner.compile(optimizer="sgd", loss="mse")
    inputs, query_y = regression_episodes(dtype="float32")
    before = [v.numpy().copy() for v in model.variables]
    learner.evaluate(inputs, query_y, verbose=0)
    learner.predict(inputs, verbose=0)
    for variable, old in zip(model.variables, before):
        np.testing.assert_array_equal(variable.numpy(), old)


@pytest.mark.parametrize("transductive", [True, False])
@BATCH_NORMS
def test_transductive_uses_each_query_sets_statistics(transductive, bn_class):
    model = bn_model(bn_class)
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


# --- Second-order MAML through batch norm ---

EPSILON = 1e-3


def bn_mlp(layer_class, features=2, hidden=3, seed=1):
    """Dense -> batch norm -> tanh -> Dense, with gamma and beta moved off their defaults."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((features,)),
        keras.layers.Dense(hidden),
        layer_class(epsilon=EPSILON),
        keras.layers.Activation("tanh"),
        keras.layers.Dense(1),
    ])
    rng = np.random.default_rng(seed)
    model.layers[1].gamma.assign(1.0 + 0.3 * rng.normal(size=hidden))
    model.layers[1].beta.assign(0.2 * rng.normal(size=hidden))
    return model


def maml_gradients(model, steps, inputs, query_y, first_order=False):
    learner = tfmeta.MAML(model, inner_steps=steps, inner_learning_rate=0.3,
                          first_order=first_order)
    learner.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    return meta_gradients(learner, inputs, query_y)


@pytest.mark.parametrize("steps", [1, 2])
def test_maml_gradient_through_tfmeta_batch_norm_equals_finite_differences(float64, steps):
    model = bn_mlp(tfmeta.layers.BatchNormalization)
    inputs, query_y = regression_episodes()
    loss, gradients = maml_gradients(model, steps, inputs, query_y)

    params = model_weights(model)
    episodes = as_episodes(inputs, query_y)

    def meta_loss():
        return bn_maml_meta_loss(params, episodes, steps, 0.3, EPSILON)

    assert loss == pytest.approx(meta_loss(), rel=1e-10)
    for got, want in zip(gradients, finite_difference(meta_loss, params)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_keras_batch_norm_second_order_gradient_is_approximate(float64):
    # Why tfmeta has its own layer: on TensorFlow, keras.layers.BatchNormalization
    # takes its variance from tf.nn.moments, which stops the gradient through the
    # mean, so the second derivative misses a term. The first-order gradient is exact.
    inputs, query_y = regression_episodes()
    params = model_weights(bn_mlp(keras.layers.BatchNormalization))
    episodes = as_episodes(inputs, query_y)
    exact = finite_difference(lambda: bn_maml_meta_loss(params, episodes, 1, 0.3, EPSILON),
                              params)
    _, keras_gradients = maml_gradients(bn_mlp(keras.layers.BatchNormalization), 1, inputs,
                                        query_y)
    error = max(np.abs(g - w).max() for g, w in zip(keras_gradients, exact))
    scale = max(np.abs(w).max() for w in exact)
    assert error > 1e-4 * scale, (
        "keras.layers.BatchNormalization now has an exact second derivative on TensorFlow: "
        "the warning in tfmeta.MAML can go"
    )


def test_maml_warns_about_keras_batch_norm_in_second_order_only():
    model = bn_mlp(keras.layers.BatchNormalization)
    with pytest.warns(UserWarning, match="tfmeta.layers.BatchNormalization"):
        tfmeta.MAML(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tfmeta.MAML(model, first_order=True)
        tfmeta.Reptile(model)
        tfmeta.MAML(bn_mlp(tfmeta.layers.BatchNormalization))


def small_conv(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((6, 6, 1)),
        keras.layers.Conv2D(4, 3, padding="same"),
        tfmeta.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(3),
    ])


def test_fused_float32_meta_gradient_matches_exact_float64():
    """The fused kernel's second derivative agrees with the exact float64 formula."""
    inputs, query_y = classification_episodes(tasks=2, ways=3, shots=2, queries=2,
                                              shape=(6, 6, 1))
    model = small_conv()
    weights = model.get_weights()

    def gradients(dtype):
        keras.config.set_dtype_policy(dtype)
        try:
            clone = small_conv()
        finally:
            keras.config.set_dtype_policy("float32")
        clone.set_weights([w.astype(dtype) for w in weights])
        learner = tfmeta.MAML(clone, inner_steps=2, inner_learning_rate=0.4)
        learner.compile(optimizer="sgd",
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        cast = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in inputs.items()}
        _, grads = meta_gradients(learner, cast, query_y)
        return [g.astype("float64") for g in grads]

    for fused, exact in zip(gradients("float32"), gradients("float64")):
        np.testing.assert_allclose(fused, exact, rtol=2e-3, atol=2e-5)
