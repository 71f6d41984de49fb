"""`recompute_inner_steps=True` gives the same MAML meta-gradients as keeping the inner steps."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from episode_fixtures import regression_episodes, tanh_mlp

import tfmeta


def tiny_conv_bn(seed=1):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(3, 3, activation="tanh")(inputs)
    x = tfmeta.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def gradients(recompute, graph, steps=3, conv=False, **kwargs):
    """Loss and meta-gradients of a fresh learner on the same weights and episodes."""
    model = tiny_conv_bn() if conv else tanh_mlp()
    learner = tfmeta.MAML(model, inner_steps=steps, inner_learning_rate=0.3,
                          recompute_inner_steps=recompute, **kwargs)
    learner.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    rng = np.random.default_rng(5)
    for rate in learner._inner_rates or []:
        rate.assign(rng.uniform(0.1, 0.5, size=rate.shape))
    inputs, query_y = regression_episodes()
    if conv:
        for key in ("support_x", "query_x"):
            inputs[key] = rng.normal(size=(*inputs[key].shape[:2], 6, 6, 1))
    tensors = [tf.constant(inputs[k]) for k in ("support_x", "support_y", "query_x")]
    tensors.append(tf.constant(query_y))

    def compute(*args):
        loss, _, grads = learner.compute_meta_gradients(*args, None)
        return loss, grads

    if graph:
        compute = tf.function(compute)
    loss, grads = compute(*tensors)
    return float(loss), [g.numpy() for g in grads]


@pytest.mark.parametrize(
    "graph, kwargs",
    [
        (True, {"steps": 1}),
        (False, {"steps": 3}),
        (True, {"steps": 3}),
        (True, {"steps": 2, "learn_inner_learning_rate": "per_step"}),
        (True, {"steps": 2, "adapt_layers": ["dense_1"]}),
        (True, {"steps": 2, "conv": True}),
    ],
    ids=["1step", "3steps-eager", "3steps", "lslr", "anil", "conv_batchnorm"],
)
def test_recomputed_inner_steps_give_the_same_gradients(float64, graph, kwargs):
    if "adapt_layers" in kwargs:
        names = [layer.name for layer in tanh_mlp().layers if layer.weights]
        kwargs = {**kwargs, "adapt_layers": names[-1:]}
    want_loss, want = gradients(False, graph, **kwargs)
    got_loss, got = gradients(True, graph, **kwargs)
    assert got_loss == pytest.approx(want_loss, rel=1e-12)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.abs(w).max() > 0
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_option_is_in_the_config_and_fit_runs(float64):
    learner = tfmeta.MAML(tanh_mlp(), inner_steps=2, recompute_inner_steps=True)
    assert learner.get_config()["recompute_inner_steps"] is True
    assert tfmeta.MAML.from_config(learner.get_config()).recompute_inner_steps
    learner.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    inputs, query_y = regression_episodes()
    history = learner.fit(inputs, query_y, batch_size=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
