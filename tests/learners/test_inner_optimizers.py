"""Inner optimizers (Reptile as published): stateless SGD/Adam, support mini-batches."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from episode_fixtures import (
    as_episodes,
    meta_gradients,
    model_weights,
    regression_episodes,
    tanh_mlp,
)
from reference import mlp_forward, mse_gradient

import tfmeta
from tfmeta.learners.inner_optimizers import InnerAdam, InnerSGD, inner_optimizer_from


def numpy_adam(params, grad_fn, steps, lr, beta_1, beta_2, epsilon, state=None):
    """Adam (Kingma and Ba, 2015, with Keras' epsilon placement), written from the paper.

    `state` is `(first, second, steps_before)` to start from (fresh if None); with a state
    the result is `(fast, (first, second, steps_before + steps))`.
    """
    zeros = [np.zeros_like(p) for p in params]
    first, second, before = state if state is not None else (zeros, zeros, 0)
    first, second = [f.copy() for f in first], [s.copy() for s in second]
    fast = [p.copy() for p in params]
    for t in range(before + 1, before + steps + 1):
        grads = grad_fn(fast, t - 1 - before)
        for i, g in enumerate(grads):
            first[i] = beta_1 * first[i] + (1 - beta_1) * g
            second[i] = beta_2 * second[i] + (1 - beta_2) * g * g
            step = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
            fast[i] = fast[i] - step * first[i] / (np.sqrt(second[i]) + epsilon)
    if state is None:
        return fast
    return fast, (first, second, before + steps)


def adapted_weights(learner, inputs):
    """The fast weights of every task after `inner_steps` (a list per task)."""
    weights = [v.value for v in learner.model.trainable_variables]
    tasks = []
    for sx, sy in zip(inputs["support_x"], inputs["support_y"]):
        fast = learner.adapt(weights, [], tf.constant(sx), tf.constant(sy),
                             learner.inner_steps, True, True)
        tasks.append([f.numpy() for f in fast])
    return tasks


def compiled(learner):
    learner.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    return learner


@pytest.mark.parametrize("beta_1", [0.0, 0.9])
def test_inner_adam_matches_numpy_reference(float64, beta_1):
    model = tanh_mlp()
    params = model_weights(model)
    learner = compiled(tfmeta.Reptile(
        model, inner_steps=4,
        inner_optimizer=keras.optimizers.Adam(0.05, beta_1=beta_1, beta_2=0.99, epsilon=1e-6)))
    assert learner.inner_learning_rate == pytest.approx(0.05)
    inputs, query_y = regression_episodes()
    for (sx, sy, _, _), got in zip(as_episodes(inputs, query_y), adapted_weights(learner, inputs)):
        # Keras stores the rate as float32: use the very value the learner applies.
        want = numpy_adam(params, lambda fast, _, sx=sx, sy=sy: mse_gradient(fast, sx, sy), 4,
                          learner.inner_learning_rate, beta_1, 0.99, 1e-6)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_state_is_fresh_for_every_task(float64):
    """Two identical tasks in one meta-batch adapt identically (no state leaks between them)."""
    learner = compiled(tfmeta.Reptile(tanh_mlp(), inner_steps=3, inner_optimizer="adam"))
    inputs, _ = regression_episodes(tasks=1)
    twice = {key: np.concatenate([value, value]) for key, value in inputs.items()}
    first, second = adapted_weights(learner, twice)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("optimizer", [
    keras.optimizers.Adam(0.01, beta_1=0.0),
    keras.optimizers.Adam(0.02, beta_1=0.5, beta_2=0.9, epsilon=1e-4),
    keras.optimizers.SGD(0.1, momentum=0.9),
    keras.optimizers.SGD(0.1, momentum=0.5, nesterov=True),
])
def test_rules_equal_the_keras_optimizers(optimizer):
    """The stateless rule reproduces the Keras optimizer applied to a variable, step by step."""
    rule, rate = inner_optimizer_from(optimizer)
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 2)).astype("float32")
    variable = keras.Variable(start)
    keras_optimizer = optimizer.from_config(optimizer.get_config())
    weight, state = tf.constant(start), rule.initial_state(tf.constant(start))
    for step in range(5):
        gradient = rng.normal(size=(3, 2)).astype("float32")
        keras_optimizer.apply_gradients([(tf.constant(gradient), variable)])
        weight, state = rule.update(weight, tf.constant(gradient), state, step, rate)
        np.testing.assert_allclose(weight.numpy(), variable.numpy(), rtol=1e-5, atol=1e-6)


def test_support_mini_batches_cycle_through_the_support_set(float64):
    model = tanh_mlp()
    params = model_weights(model)
    learner = compiled(tfmeta.Reptile(model, inner_steps=4, inner_learning_rate=0.2,
                                      inner_batch_size=4))
    inputs, query_y = regression_episodes(support=6)
    for (sx, sy, _, _), got in zip(as_episodes(inputs, query_y), adapted_weights(learner, inputs)):
        fast = [p.copy() for p in params]
        for step in range(4):
            rows = [(step * 4 + i) % 6 for i in range(4)]  # 0-3, 4 5 0 1, 2-5, 0-3
            fast = [f - 0.2 * g for f, g in zip(fast, mse_gradient(fast, sx[rows], sy[rows]))]
        for g, w in zip(got, fast):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_reptile_with_inner_adam_pseudo_gradient(float64):
    model = tanh_mlp()
    params = model_weights(model)
    learner = compiled(tfmeta.Reptile(model, inner_steps=3,
                                      inner_optimizer=keras.optimizers.Adam(0.1, beta_1=0.0)))
    inputs, query_y = regression_episodes()
    _, gradients = meta_gradients(learner, inputs, query_y)
    rate = learner.inner_learning_rate
    adapted = [numpy_adam(params, lambda fast, _, sx=sx, sy=sy: mse_gradient(fast, sx, sy), 3,
                          rate, 0.0, 0.999, 1e-7)
               for sx, sy, _, _ in as_episodes(inputs, query_y)]
    for index, gradient in enumerate(gradients):
        want = params[index] - np.mean([task[index] for task in adapted], axis=0)
        np.testing.assert_allclose(gradient, want, rtol=1e-9, atol=1e-12)


def carried_state(learner):
    """The learner's carried Adam state as `(first, second, steps)` NumPy values."""
    variables = learner.carried_inner_state.variables
    return ([np.array(first.numpy()) for first, _ in variables],
            [np.array(second.numpy()) for _, second in variables],
            float(learner.carried_inner_state.steps.numpy()))


@pytest.mark.parametrize("learner_class", ["reptile", "fomaml"])
def test_carried_adam_state_matches_numpy_reference(float64, learner_class):
    """Two meta-iterations: every task starts from the carried moments and step count, and
    the state after a meta-batch is the mean of the tasks' final states (steps + inner_steps).
    Evaluation starts from the carried state and leaves it as it is."""
    model = tanh_mlp()
    params = model_weights(model)
    adam = dict(beta_1=0.5, beta_2=0.9, epsilon=1e-6)
    options = dict(inner_steps=3, inner_optimizer=keras.optimizers.Adam(0.05, **adam),
                   carry_inner_optimizer_state=True)
    if learner_class == "reptile":
        learner = compiled(tfmeta.Reptile(model, **options))
    else:
        learner = compiled(tfmeta.MAML(model, first_order=True, **options))
    rate = learner.inner_learning_rate
    state = ([np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params], 0)
    for seed in (0, 1):
        inputs, query_y = regression_episodes(tasks=2, seed=seed)
        results = [numpy_adam(params, lambda fast, _, sx=sx, sy=sy: mse_gradient(fast, sx, sy),
                              3, rate, adam["beta_1"], adam["beta_2"], adam["epsilon"], state)
                   for sx, sy, _, _ in as_episodes(inputs, query_y)]
        if learner_class == "reptile":  # SGD(1.0) on theta - mean(phi): theta = mean(phi).
            params = [np.mean([fast[i] for fast, _ in results], axis=0)
                      for i in range(len(params))]
        else:  # First-order MAML: the mean query gradient at phi.
            gradients = [mse_gradient(fast, qx, qy)
                         for (fast, _), (_, _, qx, qy) in zip(results, as_episodes(inputs,
                                                                                     query_y))]
            params = [p - np.mean([g[i] for g in gradients], axis=0)
                      for i, p in enumerate(params)]
        state = ([np.mean([s[0][i] for _, s in results], axis=0) for i in range(len(params))],
                 [np.mean([s[1][i] for _, s in results], axis=0) for i in range(len(params))],
                 state[2] + 3)
        learner.train_on_batch({k: tf.constant(v) for k, v in inputs.items()},
                               tf.constant(query_y))
        for got, want in zip(model_weights(learner.model), params):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
        first, second, steps = carried_state(learner)
        assert steps == state[2]
        for got, want in zip(first + second, state[0] + state[1]):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-14)
    inputs, query_y = regression_episodes(tasks=2, seed=2)
    before = carried_state(learner)
    predictions = learner.predict_on_batch({k: tf.constant(v) for k, v in inputs.items()})
    for prediction, (sx, sy, qx, _) in zip(predictions, as_episodes(inputs, query_y)):
        fast, _ = numpy_adam(params, lambda fast, _, sx=sx, sy=sy: mse_gradient(fast, sx, sy),
                             3, rate, adam["beta_1"], adam["beta_2"], adam["epsilon"], state)
        np.testing.assert_allclose(prediction, mlp_forward(fast, qx)[0], rtol=1e-9, atol=1e-12)
    after = carried_state(learner)
    assert after[2] == before[2]
    for got, want in zip(after[0] + after[1], before[0] + before[1]):
        np.testing.assert_array_equal(got, want)


def test_carried_state_is_refused_for_plain_sgd_and_kept_in_config(tmp_path):
    with pytest.raises(ValueError, match="`carry_inner_optimizer_state`.*plain SGD"):
        tfmeta.Reptile(tanh_mlp(), carry_inner_optimizer_state=True)
    with pytest.raises(ValueError, match="`carry_inner_optimizer_state`"):
        tfmeta.Reptile(tanh_mlp(), inner_optimizer="adam", carry_inner_optimizer_state="yes")
    learner = compiled(tfmeta.Reptile(tanh_mlp(), inner_optimizer="adam",
                                      carry_inner_optimizer_state=True))
    learner.carried_inner_state.steps.assign(7.0)
    path = tmp_path / "reptile.keras"
    learner.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.carry_inner_optimizer_state
    assert float(loaded.carried_inner_state.steps.numpy()) == 7.0
    assert not compiled(tfmeta.Reptile(tanh_mlp())).get_config()["carry_inner_optimizer_state"]


def test_first_order_maml_accepts_adam_and_second_order_refuses_it():
    tfmeta.MAML(tanh_mlp(), first_order=True, inner_optimizer="adam")
    with pytest.raises(ValueError, match="`inner_optimizer`.*first_order=True"):
        tfmeta.MAML(tanh_mlp(), inner_optimizer="adam")
    # Momentum SGD is smooth: second order is fine.
    tfmeta.MAML(tanh_mlp(), inner_optimizer=keras.optimizers.SGD(0.1, momentum=0.9))


@pytest.mark.parametrize("bad", [
    "rmsprop", 3, keras.optimizers.RMSprop(0.1),
    keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)),
    keras.optimizers.Adam(0.1, weight_decay=0.01), keras.optimizers.Adam(0.1, amsgrad=True),
    keras.optimizers.SGD(0.1, clipnorm=1.0),
])
def test_bad_inner_optimizers_are_refused(bad):
    with pytest.raises(ValueError, match="`inner_optimizer`"):
        tfmeta.Reptile(tanh_mlp(), inner_optimizer=bad)


def test_options_the_loop_cannot_honour_are_refused():
    with pytest.raises(ValueError, match="`inner_batch_size`"):
        tfmeta.Reptile(tanh_mlp(), inner_batch_size=0)
    with pytest.raises(ValueError, match="`inner_optimizer`.*learn_inner_learning_rate"):
        tfmeta.MAML(tanh_mlp(), first_order=True, inner_optimizer="adam",
                    learn_inner_learning_rate="per_step")
    with pytest.raises(ValueError, match="`recompute_inner_steps`"):
        tfmeta.MAML(tanh_mlp(), recompute_inner_steps=True, inner_batch_size=2)
    for option in ("multi_step_loss_steps", "first_order_steps", "first_order"):
        with pytest.raises(ValueError, match=f"`{option}` for Reptile"):
            tfmeta.Reptile(tanh_mlp(), **{option: 10})


def test_config_round_trip_keeps_the_inner_optimizer(tmp_path):
    learner = compiled(tfmeta.Reptile(
        tanh_mlp(), inner_steps=2, inner_batch_size=3,
        inner_optimizer=keras.optimizers.Adam(0.002, beta_1=0.0)))
    path = tmp_path / "reptile.keras"
    learner.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.inner_optimizer, keras.optimizers.Adam)
    assert loaded.inner_optimizer.get_config()["beta_1"] == 0.0
    assert loaded.inner_learning_rate == pytest.approx(0.002)
    assert loaded.inner_batch_size == 3
    assert compiled(tfmeta.Reptile(tanh_mlp())).get_config()["inner_optimizer"] == "sgd"


def test_doctest_rules():
    assert isinstance(inner_optimizer_from("sgd")[0], InnerSGD)
    assert isinstance(inner_optimizer_from("ADAM")[0], InnerAdam)
