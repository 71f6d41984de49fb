"""MAML++ options of tfmeta.MAML against hand-derived and finite-difference references."""

import keras
import numpy as np
import pytest
from episode_fixtures import (
    as_episodes,
    meta_gradients,
    model_weights,
    regression_episodes,
    tanh_mlp,
)
from reference import adapt, finite_difference, maml_meta_loss, mse

import tfmeta
from tfmeta.learners.maml import multi_step_loss_weights

LR = 0.3


def compiled(learner):
    learner.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    return learner


def hand_weights(steps, iteration, anneal):
    """The schedule of Antoniou et al. (2019), written out with `iteration / anneal` epochs."""
    weights = np.full(steps, 1.0 / steps)
    decay = 1.0 / steps / anneal
    floor = 0.03 / steps
    for i in range(steps - 1):
        weights[i] = max(weights[i] - iteration * decay, floor)
    weights[-1] = min(weights[-1] + iteration * (steps - 1) * decay, 1.0 - (steps - 1) * floor)
    return weights


@pytest.mark.parametrize("steps", [1, 2, 5])
@pytest.mark.parametrize("iteration", [0, 7, 40, 100, 1000])
def test_multi_step_loss_weights_follow_the_paper(steps, iteration):
    got = multi_step_loss_weights(steps, iteration, 40).numpy()
    np.testing.assert_allclose(got, hand_weights(steps, iteration, 40), rtol=1e-6)
    assert got.sum() == pytest.approx(1.0, abs=1e-6) or iteration >= 40


@pytest.mark.parametrize("iteration", [0, 30])
def test_multi_step_loss_is_the_weighted_sum_with_its_exact_gradient(float64, iteration):
    steps, anneal = 3, 100
    model = tanh_mlp()
    learner = compiled(tfmeta.MAML(model, inner_steps=steps, inner_learning_rate=LR,
                                   multi_step_loss_steps=anneal))
    learner.optimizer.iterations.assign(iteration)
    inputs, query_y = regression_episodes()
    loss, gradients = meta_gradients(learner, inputs, query_y)

    params = model_weights(model)
    episodes = as_episodes(inputs, query_y)
    weights = hand_weights(steps, iteration, anneal)
    rates = [[LR] * steps] * len(params)

    def multi_step_loss():
        total = 0.0
        for k in range(steps):
            per_task = [mse(adapt(params, sx, sy, k + 1, rates), qx, qy)
                        for sx, sy, qx, qy in episodes]
            total += weights[k] * np.mean(per_task)
        return total

    assert loss == pytest.approx(multi_step_loss(), rel=1e-10)
    expected = finite_difference(multi_step_loss, params)
    for got, want in zip(gradients, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_first_order_steps_switch_the_gradient_exactly_when_scheduled(float64):
    steps, switch = 2, 5
    model = tanh_mlp()
    learner = compiled(tfmeta.MAML(model, inner_steps=steps, inner_learning_rate=LR,
                                   first_order_steps=switch))
    first = compiled(tfmeta.MAML(model, inner_steps=steps, inner_learning_rate=LR,
                                 first_order=True))
    inputs, query_y = regression_episodes()
    _, first_order = meta_gradients(first, inputs, query_y)
    params = model_weights(model)
    episodes = as_episodes(inputs, query_y)
    rates = [[LR] * steps] * len(params)
    second_order = finite_difference(lambda: maml_meta_loss(params, episodes, steps, rates),
                                     params)
    schedule = ((0, first_order, 1e-12), (switch - 1, first_order, 1e-12),
                (switch, second_order, 1e-6), (switch + 10, second_order, 1e-6))
    for iteration, expected, tolerance in schedule:
        learner.optimizer.iterations.assign(iteration)
        _, got = meta_gradients(learner, inputs, query_y)
        for g, w in zip(got, expected):
            np.testing.assert_allclose(g, w, rtol=tolerance, atol=1e-10)
    assert not np.allclose(first_order[0], second_order[0])


def test_mamlpp_options_train_and_round_trip(tmp_path):
    learner = tfmeta.MAML(tanh_mlp(features=1), inner_steps=2, inner_learning_rate=0.01,
                          learn_inner_learning_rate="per_step", multi_step_loss_steps=10,
                          first_order_steps=1)
    learner.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mse"])
    history = learner.fit(tfmeta.data.sinusoid(meta_batch_size=2), steps_per_epoch=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    learner.save(tmp_path / "mamlpp.keras")
    loaded = keras.saving.load_model(tmp_path / "mamlpp.keras")
    assert (loaded.multi_step_loss_steps, loaded.first_order_steps) == (10, 1)


@pytest.mark.parametrize("kwargs, argument", [
    ({"multi_step_loss_steps": 0}, "multi_step_loss_steps"),
    ({"multi_step_loss_steps": 2.5}, "multi_step_loss_steps"),
    ({"first_order_steps": True}, "first_order_steps"),
    ({"first_order_steps": 3, "first_order": True}, "first_order_steps"),
    ({"first_order_steps": 3, "recompute_inner_steps": True}, "first_order_steps"),
])
def test_bad_schedules_are_refused(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        tfmeta.MAML(tanh_mlp(), **kwargs)


# --- Per-step batch norm (BNWB + BNRS) ---

EPSILON = 1e-3


def bn_mlp(features=2, hidden=3, seed=1):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((features,)), keras.layers.Dense(hidden),
        tfmeta.layers.BatchNormalization(epsilon=EPSILON, momentum=0.9),
        keras.layers.Activation("tanh"), keras.layers.Dense(1),
    ])


def per_step_learner(model, steps):
    learner = compiled(tfmeta.MAML(model, inner_steps=steps, inner_learning_rate=LR,
                                   per_step_batch_norm=True))
    per_step = learner._per_step_batch_norm
    rng = np.random.default_rng(3)
    for copies in per_step.weights:  # move every step's gamma and beta apart
        copies.assign(copies.numpy() + 0.3 * rng.normal(size=copies.shape))
    return learner, per_step


@pytest.mark.parametrize("steps", [1, 2])
def test_per_step_batch_norm_weights_gradient_equals_finite_differences(float64, steps):
    from reference import bn_mse, bn_mse_gradient

    model = bn_mlp()
    learner, per_step = per_step_learner(model, steps)
    inputs, query_y = regression_episodes()
    loss, _, gradients = learner.compute_meta_gradients(
        *(inputs[k] for k in ("support_x", "support_y", "query_x")), query_y, None)
    by_variable = {id(v): g.numpy() for v, g in zip(learner.trainable_variables, gradients)}

    w1, b1, _, _, w2, b2 = model_weights(model)
    gammas, betas = (per_step.weights[0].numpy(), per_step.weights[1].numpy())
    episodes = as_episodes(inputs, query_y)

    def meta_loss():
        losses = []
        for sx, sy, qx, qy in episodes:
            fast = [w1, b1, w2, b2]
            for k in range(steps):  # gamma/beta of step k, not adapted
                params = [fast[0], fast[1], gammas[k], betas[k], fast[2], fast[3]]
                g = bn_mse_gradient(params, sx, sy, EPSILON)
                fast = [f - LR * d for f, d in zip(fast, (g[0], g[1], g[4], g[5]))]
            last = [fast[0], fast[1], gammas[-1], betas[-1], fast[2], fast[3]]
            losses.append(bn_mse(last, qx, qy, EPSILON))
        return float(np.mean(losses))

    assert float(loss) == pytest.approx(meta_loss(), rel=1e-10)
    arrays = [w1, b1, w2, b2, gammas, betas]
    variables = [model.trainable_variables[i] for i in (0, 1, 4, 5)] + per_step.weights
    for variable, want in zip(variables, finite_difference(meta_loss, arrays)):
        np.testing.assert_allclose(by_variable[id(variable)], want, rtol=1e-6, atol=1e-8)
    # The layer's own gamma and beta are unused.
    for variable in model.trainable_variables[2:4]:
        np.testing.assert_array_equal(by_variable[id(variable)], 0.0)


def test_per_step_statistics_are_kept_apart(float64):
    steps = 2
    model = bn_mlp()
    learner, per_step = per_step_learner(model, steps)
    inputs, query_y = regression_episodes()
    w1, b1 = (v.numpy().copy() for v in model.trainable_variables[:2])
    learner.train_on_batch(inputs, query_y)

    # Copy 0 follows inner step 0's support pass, which sees the meta-weights: with
    # momentum 0.9 from (0, 1), it moves a tenth of the way to the tasks' mean statistics.
    pre = np.einsum("tsf,fh->tsh", inputs["support_x"], w1) + b1
    moving_mean, moving_variance = (v.numpy() for v in per_step.statistics)
    assert moving_mean.shape == moving_variance.shape == (steps, 3)
    np.testing.assert_allclose(moving_mean[0], 0.1 * pre.mean(axis=1).mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(moving_variance[0], 0.9 + 0.1 * pre.var(axis=1).mean(axis=0),
                               rtol=1e-10)
    # Copy 1 follows step 1's support pass (adapted weights): different statistics.
    assert not np.allclose(moving_mean[1], moving_mean[0])
    assert not np.allclose(moving_variance[1], moving_variance[0])
    # Non-transductive evaluation reads the copies: changing copy 1 (used by step 1 and
    # the query pass) changes the predictions, changing the layer's own statistics not.
    learner.transductive = False
    before = learner.predict_on_batch(inputs)
    for variable in model.non_trainable_variables:
        variable.assign(variable.numpy() + 5.0)
    np.testing.assert_array_equal(learner.predict_on_batch(inputs), before)
    per_step.statistics[0].assign(per_step.statistics[0].numpy() + [[0.0] * 3, [5.0] * 3])
    assert not np.allclose(learner.predict_on_batch(inputs), before)


def test_per_step_batch_norm_needs_batch_norm_and_is_maml_only():
    with pytest.raises(ValueError, match="`per_step_batch_norm`.*no batch normalization"):
        tfmeta.MAML(tanh_mlp(), per_step_batch_norm=True)
    with pytest.raises(ValueError, match="`per_step_batch_norm` for Reptile"):
        tfmeta.Reptile(bn_mlp(), per_step_batch_norm=True)
    with pytest.raises(ValueError, match="`per_step_batch_norm`"):
        tfmeta.MAML(bn_mlp(), per_step_batch_norm="yes")


def test_zero_inner_steps_predict_with_the_meta_weights():
    model = tanh_mlp()
    learner = compiled(tfmeta.MAML(model, inner_steps=1))
    inputs, _ = regression_episodes(dtype="float32")
    predictions, fast, _ = learner.adapt_and_predict(inputs, 0, first_order=True,
                                                     training=False)
    np.testing.assert_allclose(predictions[0], model(inputs["query_x"][0]), rtol=1e-6)
    np.testing.assert_array_equal(fast[0][0], model.trainable_variables[0])
