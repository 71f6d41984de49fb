"""MAML meta-gradients against independent derivations (finite differences, closed form)."""

import keras
import numpy as np
import pytest
from episode_fixtures import (
    as_episodes,
    classification_episodes,
    meta_gradients,
    model_weights,
    regression_episodes,
    tanh_mlp,
)
from reference import finite_difference, maml_meta_loss, mse_gradient

import tfmeta

LR = 0.3


def compiled(learner, optimizer=None):
    learner.compile(optimizer=optimizer or keras.optimizers.SGD(1.0), loss="mse")
    return learner



@pytest.mark.parametrize("steps", [1, 2, 3])
def test_second_order_gradient_equals_finite_differences(float64, steps):
    model = tanh_mlp()
    learner = compiled(tfmeta.MAML(model, inner_steps=steps, inner_learning_rate=LR))
    inputs, query_y = regression_episodes()
    loss, gradients = meta_gradients(learner, inputs, query_y)

    params = model_weights(model)
    rates = [[LR] * steps] * len(params)
    episodes = as_episodes(inputs, query_y)
    expected_loss = maml_meta_loss(params, episodes, steps, rates)
    expected = finite_difference(lambda: maml_meta_loss(params, episodes, steps, rates), params)

    assert loss == pytest.approx(expected_loss, rel=1e-10)
    for got, want in zip(gradients, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("steps", [1, 3])
def test_first_order_gradient_is_query_gradient_at_adapted_weights(float64, steps):
    model = tanh_mlp()
    learner = compiled(
        tfmeta.MAML(model, inner_steps=steps, inner_learning_rate=LR, first_order=True)
    )
    inputs, query_y = regression_episodes()
    _, gradients = meta_gradients(learner, inputs, query_y)

    params = model_weights(model)
    expected = [np.zeros_like(p) for p in params]
    for sx, sy, qx, qy in as_episodes(inputs, query_y):
        fast = [p.copy() for p in params]
        for _ in range(steps):
            fast = [f - LR * g for f, g in zip(fast, mse_gradient(fast, sx, sy))]
        for total, g in zip(expected, mse_gradient(fast, qx, qy)):
            total += g / len(query_y)
    for got, want in zip(gradients, expected):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # And it differs from the true (second-order) gradient.
    second = compiled(tfmeta.MAML(model, inner_steps=steps, inner_learning_rate=LR))
    _, exact = meta_gradients(second, inputs, query_y)
    assert not np.allclose(exact[0], gradients[0])


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_linear_regression_closed_form(float64, first_order, steps):
    """For L(w) = |Xw - y|^2 / n one SGD step is affine: w' = A w + c with
    A = I - 2a X^T X / n, so d(query loss)/dw = (A^T)^k grad_q(w_k) exactly."""
    features, alpha = 3, 0.05
    model = keras.Sequential(
        [keras.Input((features,)), keras.layers.Dense(1, use_bias=False)]
    )
    learner = compiled(
        tfmeta.MAML(model, inner_steps=steps, inner_learning_rate=alpha, first_order=first_order)
    )
    inputs, query_y = regression_episodes(tasks=4, support=5, queries=7, features=features)
    _, (gradient,) = meta_gradients(learner, inputs, query_y)

    w = model_weights(model)[0]
    expected = np.zeros_like(w)
    for sx, sy, qx, qy in as_episodes(inputs, query_y):
        a = np.eye(features) - 2 * alpha * sx.T @ sx / len(sx)
        c = 2 * alpha * sx.T @ sy / len(sx)
        w_k = w.copy()
        for _ in range(steps):
            w_k = a @ w_k + c
        query_gradient = 2 * qx.T @ (qx @ w_k - qy) / len(qx)
        jacobian = np.eye(features) if first_order else np.linalg.matrix_power(a.T, steps)
        expected += jacobian @ query_gradient / len(query_y)
    np.testing.assert_allclose(gradient, expected, rtol=1e-10, atol=1e-12)


def test_anil_adapts_only_named_layers(float64):
    model = tanh_mlp()
    learner = compiled(
        tfmeta.MAML(model, inner_steps=2, inner_learning_rate=LR, adapt_layers=["output"])
    )
    inputs, query_y = regression_episodes()
    _, gradients = meta_gradients(learner, inputs, query_y)

    params = model_weights(model)
    rates = [[LR] * 2] * len(params)
    episodes = as_episodes(inputs, query_y)
    expected = finite_difference(
        lambda: maml_meta_loss(params, episodes, 2, rates, adapted=[2, 3]), params
    )
    for got, want in zip(gradients, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_meta_sgd_learns_per_parameter_rates(float64):
    model = tanh_mlp()
    learner = compiled(
        tfmeta.MAML(model, inner_steps=2, inner_learning_rate=LR,
                    learn_inner_learning_rate="per_parameter")
    )
    rng = np.random.default_rng(3)
    for rate in learner._inner_rates:  # Different rates, so a mix-up would show.
        rate.assign(rng.uniform(0.1, 0.5, size=rate.shape))
    inputs, query_y = regression_episodes()
    _, gradients = meta_gradients(learner, inputs, query_y)

    params = model_weights(model)
    alphas = [np.array(r.numpy()) for r in learner._inner_rates]
    episodes = as_episodes(inputs, query_y)

    def loss():
        return maml_meta_loss(params, episodes, 2, [[a, a] for a in alphas])

    expected = finite_difference(loss, params + alphas)
    assert len(gradients) == len(expected) == 8
    for got, want in zip(gradients, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_lslr_learns_per_step_rates(float64):
    model = tanh_mlp()
    learner = compiled(
        tfmeta.MAML(model, inner_steps=3, inner_learning_rate=LR,
                    learn_inner_learning_rate="per_step")
    )
    rng = np.random.default_rng(4)
    for rate in learner._inner_rates:
        rate.assign(rng.uniform(0.1, 0.5, size=(3,)))
    inputs, query_y = regression_episodes()
    _, gradients = meta_gradients(learner, inputs, query_y)

    params = model_weights(model)
    rates = [np.array(r.numpy()) for r in learner._inner_rates]
    episodes = as_episodes(inputs, query_y)
    expected = finite_difference(lambda: maml_meta_loss(params, episodes, 3, rates),
                                 params + rates)
    for got, want in zip(gradients, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_train_step_applies_meta_gradient_and_reports_query_loss(float64):
    model = tanh_mlp()
    learner = compiled(tfmeta.MAML(model, inner_steps=1, inner_learning_rate=LR),
                       optimizer=keras.optimizers.SGD(0.1))
    inputs, query_y = regression_episodes()
    params = model_weights(model)
    rates = [[LR]] * len(params)
    episodes = as_episodes(inputs, query_y)
    expected_loss = maml_meta_loss(params, episodes, 1, rates)
    expected_grads = finite_difference(lambda: maml_meta_loss(params, episodes, 1, rates), params)

    logs = learner.train_on_batch(inputs, query_y, return_dict=True)

    assert logs["loss"] == pytest.approx(expected_loss, rel=1e-8)
    for new, old, g in zip(model_weights(model), params, expected_grads):
        np.testing.assert_allclose(new, old - 0.1 * g, rtol=1e-6, atol=1e-8)


def test_inner_loop_assigns_no_variable_and_adaptation_helps(float64):
    model = tanh_mlp()
    learner = compiled(tfmeta.MAML(model, inner_steps=1, inner_learning_rate=LR,
                                   eval_inner_steps=5))
    inputs, _ = regression_episodes()
    before = model_weights(model)
    # Query = support: adapting on the support set must lower the loss on it.
    query_y = inputs["support_y"]
    same = dict(inputs, query_x=inputs["support_x"])
    adapted_loss = learner.evaluate(same, query_y, verbose=0, return_dict=True)["loss"]
    unadapted = np.mean((model.predict(inputs["support_x"].reshape(-1, 2), verbose=0).reshape(
        query_y.shape) - query_y) ** 2)
    assert adapted_loss < unadapted
    for new, old in zip(model_weights(model), before):
        np.testing.assert_array_equal(new, old)


def test_eval_inner_steps_are_used_in_predict(float64):
    model = tanh_mlp()
    inputs, _ = regression_episodes()
    one = compiled(tfmeta.MAML(model, inner_steps=1, inner_learning_rate=LR))
    five = compiled(tfmeta.MAML(model, inner_steps=1, inner_learning_rate=LR, eval_inner_steps=5))
    params = model_weights(model)
    from reference import adapt, mlp_forward

    for learner, steps in [(one, 1), (five, 5)]:
        predictions = learner.predict_on_batch(inputs)
        for b, (sx, sy, qx, _) in enumerate(as_episodes(inputs, inputs["support_y"][:, :5])):
            fast = adapt(params, sx, sy, steps, [[LR] * steps] * 4)
            np.testing.assert_allclose(predictions[b], mlp_forward(fast, qx)[0], rtol=1e-10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(inner_steps=0), "inner_steps"),
        (dict(inner_steps=-1), "inner_steps"),
        (dict(inner_steps=1.5), "inner_steps"),
        (dict(eval_inner_steps=0), "eval_inner_steps"),
        (dict(inner_learning_rate=0.0), "inner_learning_rate"),
        (dict(learn_inner_learning_rate="adam"), "learn_inner_learning_rate"),
        (dict(adapt_layers=["nope"]), "adapt_layers"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tfmeta.MAML(tanh_mlp(), **kwargs)


def test_predict_before_compile_says_what_to_do():
    inputs, _ = regression_episodes(dtype="float32")
    with pytest.raises(ValueError, match="compile"):
        tfmeta.MAML(tanh_mlp()).predict_on_batch(inputs)


def test_unbuilt_model_is_rejected():
    model = keras.Sequential([keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="built"):
        tfmeta.MAML(model)
    with pytest.raises(ValueError, match="keras.Model"):
        tfmeta.MAML("conv4")


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda x: {k: v for k, v in x.items() if k != "support_y"}, "support_y"),
        (lambda x: {k: v for k, v in x.items() if k != "query_x"}, "query_x"),
        (lambda x: dict(x, support_y=x["support_y"][:, :-1]), "support"),
        (lambda x: dict(x, query_x=x["query_x"][:-1]), "tasks"),
        (lambda x: dict(x, query_x=x["query_x"][..., :1]), "shape"),
    ],
)
def test_bad_episodes(mutate, match):
    learner = compiled(tfmeta.MAML(tanh_mlp()))
    inputs, query_y = regression_episodes(dtype="float32")
    with pytest.raises(ValueError, match=match):
        learner.train_on_batch(mutate(inputs), query_y)


def test_mismatched_query_targets():
    learner = compiled(tfmeta.MAML(tanh_mlp()))
    inputs, query_y = regression_episodes(dtype="float32")
    with pytest.raises(ValueError, match="query_y"):
        learner.train_on_batch(inputs, query_y[:, :-1])


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("first_order", [False, True])
def test_conv4_batch_norm_classification_trains(jit_compile, first_order):
    keras.utils.set_random_seed(0)
    model = tfmeta.backbones.conv4((16, 16, 1), filters=4, num_classes=3)
    # A small inner step keeps the first-order approximation close to the true
    # gradient, so training on one fixed batch lowers the loss for both orders.
    learner = tfmeta.MAML(model, inner_steps=1, inner_learning_rate=0.05, first_order=first_order)
    learner.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    inputs, query_y = classification_episodes(shape=(16, 16, 1))
    first = learner.train_on_batch(inputs, query_y, return_dict=True)
    for _ in range(15):
        last = learner.train_on_batch(inputs, query_y, return_dict=True)
    assert set(first) >= {"loss", "accuracy", "accuracy_ci95"}
    assert last["loss"] < first["loss"]
    assert learner.predict_on_batch(inputs).shape == (2, 6, 3)  # [tasks, queries, ways]


@pytest.mark.parametrize("tasks", [6, 12])
def test_chunked_task_map_gives_the_unrolled_meta_gradient(tasks):
    """Meta-batches above MAX_UNROLLED_TASKS run as a map over chunks: same gradients."""
    from tfmeta.learners import task_map

    assert tasks > 4
    model = tfmeta.backbones.conv4((16, 16, 1), filters=4, num_classes=3)
    inputs, query_y = classification_episodes(tasks=tasks, shape=(16, 16, 1))
    gradients = {}
    for mode in ("auto", "unroll"):
        learner = tfmeta.MAML(model, inner_steps=2, inner_learning_rate=0.3, task_batching=mode)
        learner.compile(optimizer=keras.optimizers.SGD(1.0),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        limit = task_map.MAX_UNROLLED_TASKS
        task_map.MAX_UNROLLED_TASKS = 4
        try:
            gradients[mode] = meta_gradients(learner, inputs, query_y)
        finally:
            task_map.MAX_UNROLLED_TASKS = limit
    assert gradients["auto"][0] == pytest.approx(gradients["unroll"][0], rel=1e-6)
    for chunked, unrolled in zip(gradients["auto"][1], gradients["unroll"][1]):
        np.testing.assert_allclose(chunked, unrolled, rtol=1e-5, atol=1e-6)
