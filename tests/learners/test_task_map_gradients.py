"""MAML's meta-gradient taken per task inside the task map equals the one through the map.

With Keras' own losses (the mean over query examples) MAML differentiates each task where
it runs (`GradientLearner.adapt_and_differentiate`); with any other loss it differentiates
the meta-batch's loss through the map over tasks. Both must give the same loss, gradients
and stored statistics, for every option of the inner loop and for unrolled and chunked
meta-batches.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from episode_fixtures import classification_episodes
from keras.src.losses.losses import LossFunctionWrapper

import tfmeta
from tfmeta.learners import task_map
from tfmeta.learners.task_map import loss_is_mean_over_tasks

OPTIONS = {
    "second_order": {},
    "first_order": {"first_order": True},
    "multi_step_loss": {"multi_step_loss_steps": 10},
    "learned_rates_and_per_step_batch_norm": {"learn_inner_learning_rate": "per_step",
                                              "per_step_batch_norm": True},
    "annealed_order": {"first_order_steps": 5},
    "adapt_head_only": {"adapt_layers": ["logits"]},
}


def users_loss(y_true, y_pred):
    """The same loss as a function of the user's: MAML cannot tell that it is a mean."""
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)


def compiled_maml(loss, **options):
    keras.utils.set_random_seed(3)
    model = tfmeta.backbones.conv4((16, 16, 1), filters=4, num_classes=3)
    learner = tfmeta.MAML(model, inner_steps=2, inner_learning_rate=0.3, **options)
    learner.compile(optimizer=keras.optimizers.SGD(1.0), loss=loss)
    return learner


def step_results(learner, inputs, query_y, sample_weight):
    loss, predictions, gradients = learner.compute_meta_gradients(
        tf.constant(inputs["support_x"]), tf.constant(inputs["support_y"]),
        tf.constant(inputs["query_x"]), tf.constant(query_y),
        None if sample_weight is None else tf.constant(sample_weight))
    statistics = [np.array(v) for v in learner.non_trainable_variables]
    return float(loss), np.array(predictions), [np.array(g) for g in gradients], statistics


@pytest.mark.parametrize(
    "option, tasks",
    [("second_order", 3)] + [(option, 6) for option in sorted(OPTIONS)],
)
def test_gradients_inside_the_task_map_equal_those_through_it(option, tasks, monkeypatch):
    # Meta-batches above 4 run as a map over chunks here (12 in production).
    monkeypatch.setattr(task_map, "MAX_UNROLLED_TASKS", 4)
    inputs, query_y = classification_episodes(tasks=tasks, shape=(16, 16, 1))
    sample_weight = np.random.default_rng(1).uniform(size=query_y.shape).astype("float32")
    inside = compiled_maml(keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                           **OPTIONS[option])
    through = compiled_maml(users_loss, **OPTIONS[option])
    assert loss_is_mean_over_tasks(inside._compile_loss)
    assert not loss_is_mean_over_tasks(through._compile_loss)

    for weights in (None, sample_weight):
        loss, predictions, gradients, statistics = step_results(inside, inputs, query_y, weights)
        expected = step_results(through, inputs, query_y, weights)
        assert loss == pytest.approx(expected[0], rel=1e-6)
        np.testing.assert_allclose(predictions, expected[1], rtol=1e-5, atol=1e-6)
        assert len(gradients) == len(expected[2])
        for gradient, expected_gradient in zip(gradients, expected[2]):
            np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-4, atol=1e-6)
        for value, expected_value in zip(statistics, expected[3]):
            np.testing.assert_allclose(value, expected_value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "loss",
    ["mse", "sparse_categorical_crossentropy", keras.losses.mean_absolute_error,
     keras.losses.SparseCategoricalCrossentropy(from_logits=True),
     keras.losses.MeanSquaredError(reduction="mean"), {"logits": "mse"}],
    ids=["name", "name_2", "function", "class", "mean", "nested"],
)
def test_keras_losses_reduced_by_the_mean_are_means_over_tasks(loss):
    assert loss_is_mean_over_tasks(keras_compile_loss(loss))


class SummedSquares(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return tf.reduce_sum(tf.square(y_true - y_pred), axis=-1)


@pytest.mark.parametrize(
    "loss",
    [users_loss, SummedSquares(), keras.losses.MeanSquaredError(reduction="sum"),
     keras.losses.MeanSquaredError(reduction="mean_with_sample_weight"),
     LossFunctionWrapper(users_loss), ["mse", users_loss]],
    ids=["function", "subclass", "sum", "weighted_mean", "wrapped_function", "one_of_two"],
)
def test_other_losses_are_differentiated_through_the_task_map(loss):
    assert not loss_is_mean_over_tasks(keras_compile_loss(loss))


def test_no_compiled_loss_is_not_a_mean():
    assert not loss_is_mean_over_tasks(None)


def keras_compile_loss(loss):
    from keras.src.trainers.compile_utils import CompileLoss

    return CompileLoss(loss)


def test_a_learner_with_its_own_compute_loss_is_differentiated_through_the_task_map():
    class Penalised(tfmeta.MAML):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            loss = super().compute_loss(x, y, y_pred, sample_weight, training)
            return loss + tf.math.reduce_variance(tf.reduce_mean(y_pred, axis=[1, 2]))

    model = tfmeta.backbones.conv4((16, 16, 1), filters=4, num_classes=3)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    learner = Penalised(model, inner_steps=1, inner_learning_rate=0.3)
    learner.compile(optimizer=keras.optimizers.SGD(1.0), loss=loss)
    plain = tfmeta.MAML(model, inner_steps=1, inner_learning_rate=0.3)
    plain.compile(optimizer=keras.optimizers.SGD(1.0), loss=loss)
    assert plain._loss_is_mean_over_tasks()
    assert not learner._loss_is_mean_over_tasks()
