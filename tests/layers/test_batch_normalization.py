"""tfmeta.layers.BatchNormalization: Keras' rule, an exact second derivative, the fused path."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmeta.layers import BatchNormalization


@pytest.mark.parametrize("shape", [(6, 5, 5, 3), (7, 4), (3, 4, 2)])
def test_matches_keras_batch_normalization(shape):
    rng = np.random.default_rng(0)
    ours, theirs = BatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    for step in range(3):
        x = (rng.normal(size=shape) * 3.0 + step).astype("float32")
        for training in (True, False):
            np.testing.assert_allclose(ours(x, training=training),
                                       theirs(x, training=training), rtol=1e-5, atol=2e-6)
        np.testing.assert_allclose(ours.moving_mean.numpy(), theirs.moving_mean.numpy(),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours.moving_variance.numpy(),
                                   theirs.moving_variance.numpy(), rtol=1e-5)
    assert [v.name for v in ours.weights] == [v.name for v in theirs.weights]


def test_moving_statistics_use_the_biased_batch_variance():
    x = np.arange(2 * 2 * 2 * 1, dtype="float32").reshape(2, 2, 2, 1)  # Fused path.
    layer = BatchNormalization(momentum=0.5)
    layer(x, training=True)
    np.testing.assert_allclose(layer.moving_mean.numpy(), [0.5 * x.mean()])
    np.testing.assert_allclose(layer.moving_variance.numpy(), [0.5 + 0.5 * x.var()], rtol=1e-6)


def hessian_vector_product(layer, x, v):
    """d/dx of <grad_x loss, v>, for a loss that weights each channel differently."""
    x = tf.constant(x)
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = layer(x, training=True)
            weights = tf.range(1, 1 + y.shape[-1], dtype=y.dtype)
            loss = tf.reduce_sum(tf.sin(y) * weights)
        gradient = inner.gradient(loss, x)
        directional = tf.reduce_sum(gradient * v)
    return outer.gradient(directional, x).numpy(), gradient.numpy()


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 3, 2)])
def test_second_derivative_equals_finite_differences(shape):
    rng = np.random.default_rng(1)
    x, v = rng.normal(size=shape), rng.normal(size=shape)
    layer = BatchNormalization(dtype="float64")
    product, _ = hessian_vector_product(layer, x, v)
    epsilon = 1e-6
    _, plus = hessian_vector_product(layer, x + epsilon * v, v)
    _, minus = hessian_vector_product(layer, x - epsilon * v, v)
    np.testing.assert_allclose(product, (plus - minus) / (2 * epsilon), rtol=1e-6, atol=1e-8)


def test_keras_layer_second_derivative_is_not_exact():
    # The reason for this layer (see its docstring); if this fails, Keras fixed it.
    rng = np.random.default_rng(1)
    x, v = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    exact, _ = hessian_vector_product(BatchNormalization(dtype="float64"), x, v)
    keras_product, _ = hessian_vector_product(
        keras.layers.BatchNormalization(dtype="float64"), x, v)
    assert np.abs(keras_product - exact).max() > 1e-3 * np.abs(exact).max()


def test_fused_float32_second_derivative_matches_exact_float64():
    rng = np.random.default_rng(2)
    x, v = rng.normal(size=(4, 3, 3, 2)), rng.normal(size=(4, 3, 3, 2))
    fused, _ = hessian_vector_product(BatchNormalization(), x.astype("float32"),
                                      v.astype("float32"))
    exact, _ = hessian_vector_product(BatchNormalization(dtype="float64"), x, v)
    np.testing.assert_allclose(fused, exact, rtol=1e-4, atol=1e-5)


def test_bfloat16_inputs_keep_float32_weights():
    layer = BatchNormalization(dtype="mixed_bfloat16")
    x = np.random.default_rng(3).normal(size=(4, 5, 5, 2)).astype("float32")
    for training in (True, False):
        y = layer(tf.cast(x, tf.bfloat16), training=training)
        assert y.dtype == tf.bfloat16
    assert all(w.dtype == "float32" for w in layer.weights)
    reference = BatchNormalization()(x, training=True)
    np.testing.assert_allclose(tf.cast(layer(tf.cast(x, tf.bfloat16), training=True), "float32"),
                               reference, atol=0.05)


def test_center_and_scale_off_and_xla():
    layer = BatchNormalization(center=False, scale=False)
    x = np.random.default_rng(4).normal(size=(8, 4, 4, 3)).astype("float32")
    compiled = tf.function(lambda t: layer(t, training=True), jit_compile=True)
    y = compiled(tf.constant(x)).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    assert layer.trainable_weights == []


def test_config_round_trip_and_keras_file(tmp_path):
    layer = BatchNormalization(momentum=0.9, epsilon=1e-4, center=False, name="bn")
    clone = BatchNormalization.from_config(layer.get_config())
    assert (clone.momentum, clone.epsilon, clone.center, clone.scale) == (0.9, 1e-4, False, True)
    model = keras.Sequential([keras.Input((4, 4, 2)), layer])
    x = np.random.default_rng(5).normal(size=(3, 4, 4, 2)).astype("float32")
    model(x, training=True)
    path = str(tmp_path / "bn.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[0], BatchNormalization)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"momentum": 1.5}, "momentum"), ({"epsilon": 0.0}, "epsilon")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BatchNormalization(**kwargs)


def test_bad_input_rank():
    with pytest.raises(ValueError, match="rank >= 2"):
        BatchNormalization().build((5,))
