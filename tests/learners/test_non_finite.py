"""Non-finite numbers never pass silently through a learner (issue 17, item 2)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from episode_fixtures import classification_episodes

import tfmeta


def _protonet():
    keras.utils.set_random_seed(0)
    learner = tfmeta.ProtoNet(tfmeta.backbones.mlp((4,), (8,), 8))
    learner.compile(optimizer=keras.optimizers.SGD(0.1),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return learner


def _nan_support_episode():
    inputs, query_y = classification_episodes(tasks=1, ways=3, shots=2, queries=2, shape=(4,))
    inputs["support_x"][0, 0, 0] = np.nan
    return inputs, query_y


def test_a_step_with_non_finite_gradients_is_refused_and_reports_nan():
    learner = _protonet()
    before = [v.numpy().copy() for v in learner.trainable_variables]
    inputs, query_y = _nan_support_episode()
    logs = learner.train_on_batch(inputs, query_y, return_dict=True)
    assert np.isnan(logs["loss"])
    for old, variable in zip(before, learner.trainable_variables):
        np.testing.assert_array_equal(variable.numpy(), old)  # SGD: nothing applied


def test_terminate_on_nan_stops_fit_on_nan_inputs():
    learner = _protonet()
    inputs, query_y = _nan_support_episode()
    dataset = tf.data.Dataset.from_tensors((inputs, query_y)).repeat()
    history = learner.fit(dataset, epochs=3, steps_per_epoch=2, verbose=0,
                          callbacks=[keras.callbacks.TerminateOnNaN()])
    assert len(history.history["loss"]) == 1
    assert all(np.isfinite(v.numpy()).all() for v in learner.trainable_variables)


@pytest.mark.parametrize("where", ["support_x", "query_x"])
def test_predictions_of_a_non_finite_input_are_nan(where):
    learner = _protonet()
    inputs, _ = classification_episodes(tasks=2, ways=3, shots=2, queries=2, shape=(4,))
    inputs[where][0, 1, 2] = np.inf
    logits = learner.predict(inputs, verbose=0)
    assert np.isfinite(logits[1]).all()
    if where == "support_x":
        assert np.isnan(logits[0]).all()
    else:
        assert np.isnan(logits[0, 1]).all() and np.isfinite(logits[0, [0, 2, 3, 4, 5]]).all()


def test_the_saved_model_returns_nan_for_a_nan_query(tmp_path):
    learner = _protonet()
    learner.export(str(tmp_path / "export"))
    serve = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    query_x = np.zeros([2, 4], "float32")
    query_x[1, 0] = np.nan
    logits = serve(support_x=tf.ones([3, 4]), support_y=tf.constant([0, 1, 2]),
                   query_x=tf.constant(query_x))["logits"].numpy()
    assert np.isfinite(logits[0]).all() and np.isnan(logits[1]).all()


def test_maml_with_a_huge_inner_rate_reports_nan_and_keeps_finite_weights():
    keras.utils.set_random_seed(0)
    learner = tfmeta.MAML(tfmeta.backbones.mlp(), inner_learning_rate=1e6)
    learner.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    dataset = tfmeta.data.sinusoid(meta_batch_size=2)
    history = learner.fit(dataset, epochs=5, steps_per_epoch=3, verbose=0,
                          callbacks=[keras.callbacks.TerminateOnNaN()])
    assert np.isnan(history.history["loss"][-1])
    assert all(np.isfinite(v.numpy()).all() for v in learner.trainable_variables)
