"""EpisodeEvaluation: fixed held-out episodes, evaluated every N steps and at epoch ends."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from callback_episodes import WAYS, cluster_episodes, episode_dataset, make_learner

import tfmeta
from tfmeta.callbacks import EpisodeEvaluation
from tfmeta.metrics import mean_confidence_interval


def random_episode_dataset(batches=3, tasks=2, shots=2, queries=3):
    """Different (unseeded) episodes on every pass: only a cached copy is 'fixed'."""

    def episode(_):
        inputs = {
            "support_x": tf.random.normal([tasks, WAYS * shots, 8]),
            "support_y": tf.tile(tf.range(WAYS)[None], [tasks, shots]),
            "query_x": tf.random.normal([tasks, WAYS * queries, 8]),
        }
        return inputs, tf.tile(tf.range(WAYS)[None], [tasks, queries])

    return tf.data.Dataset.range(batches).map(episode)


class BatchLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = {}

    def on_train_batch_end(self, batch, logs=None):
        self.logs[int(self.model.optimizer.iterations)] = dict(logs)


def test_evaluates_the_same_cached_episodes_with_mean_and_ci():
    learner = make_learner("protonet")
    callback = EpisodeEvaluation(random_episode_dataset())
    callback.set_model(learner)
    first, second = callback.evaluate(), callback.evaluate()
    assert first == second
    assert callback.num_episodes == 6
    accuracies = np.concatenate([
        np.mean(np.argmax(learner.predict_on_batch(inputs), -1) == query_y, axis=1)
        for inputs, query_y in callback.episode_batches()
    ])
    mean, ci95 = mean_confidence_interval(accuracies)
    assert first["heldout_accuracy"] == pytest.approx(mean)
    assert first["heldout_accuracy_ci95"] == pytest.approx(ci95)
    assert set(first) == {"heldout_loss", "heldout_accuracy", "heldout_accuracy_ci95"}


def test_every_n_steps_epoch_ends_logs_and_resume():
    learner = make_learner("maml")
    heldout = episode_dataset(tasks=4, seed=3)
    both = EpisodeEvaluation(heldout, every_n_steps=2, prefix="a")
    steps_only = EpisodeEvaluation(heldout, every_n_steps=2, at_epoch_end=False, prefix="b")
    batch_logs = BatchLogs()
    history = learner.fit(episode_dataset(tasks=8, repeat=True), epochs=2, steps_per_epoch=3,
                          callbacks=[both, steps_only, batch_logs], verbose=0)
    assert both.history["step"] == [2, 3, 4, 6]
    assert both.history["epoch"] == [0, 0, 1, 1]
    assert steps_only.history["step"] == [2, 4, 6]
    # Batch logs of the evaluated steps carry the results; epoch logs the latest ones.
    assert "a_accuracy" in batch_logs.logs[2] and "a_accuracy" not in batch_logs.logs[1]
    assert history.history["a_accuracy"] == [both.history["a_accuracy"][i] for i in (1, 3)]
    assert history.history["b_accuracy_ci95"] == [
        steps_only.history["b_accuracy_ci95"][i] for i in (0, 2)]
    # A later fit continues the optimizer's step count (as after BackupAndRestore).
    again = EpisodeEvaluation(heldout, every_n_steps=2)
    learner.fit(episode_dataset(tasks=8, repeat=True), epochs=1, steps_per_epoch=3,
                callbacks=[again], verbose=0)
    assert again.history["step"] == [8, 9]


def test_regression_logs_mse_from_an_endless_dataset():
    keras.utils.set_random_seed(0)
    learner = tfmeta.MAML(tfmeta.backbones.mlp(hidden_units=(8,)), inner_steps=1)
    learner.compile(optimizer="adam", loss="mse")
    callback = EpisodeEvaluation(tfmeta.data.sinusoid(shots=5, queries=5, meta_batch_size=3),
                                 steps=2)
    callback.set_model(learner)
    results = callback.evaluate()
    assert callback.num_episodes == 6
    assert set(results) == {"heldout_loss", "heldout_mse", "heldout_mse_ci95"}
    assert results["heldout_loss"] == pytest.approx(results["heldout_mse"], rel=1e-5)


def test_accepts_lists_a_single_batch_and_metric_names():
    inputs, query_y = cluster_episodes(tasks=4)
    batches = [({k: v[:2] for k, v in inputs.items()}, query_y[:2]),
               ({k: v[2:] for k, v in inputs.items()}, query_y[2:])]
    learner = make_learner("reptile")
    for episodes, steps, expected in ((batches, None, 4), (batches, 1, 2),
                                      ((inputs, query_y), None, 4)):
        callback = EpisodeEvaluation(episodes, steps=steps, metrics=["acc"], prefix="test")
        callback.set_model(learner)
        assert callback.num_episodes == expected
        assert "test_accuracy_ci95" in callback.evaluate()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"episodes": episode_dataset(repeat=True)}, "endless dataset"),
        ({"episodes": [], "steps": None}, None),
        ({"episodes": episode_dataset(), "every_n_steps": 0}, "every_n_steps"),
        ({"episodes": episode_dataset(), "at_epoch_end": False}, "never evaluates"),
        ({"episodes": episode_dataset(), "prefix": ""}, "prefix"),
        ({"episodes": episode_dataset(), "metrics": ["auc"]}, "metrics"),
        ({"episodes": "episodes"}, "episodes"),
    ],
)
def test_bad_arguments(kwargs, match):
    if match is None:  # Checked when the episodes are first read.
        with pytest.raises(ValueError, match="at least one meta-batch"):
            EpisodeEvaluation(**kwargs).episode_batches()
        return
    with pytest.raises(ValueError, match=match):
        EpisodeEvaluation(**kwargs)


def test_bad_elements_are_named():
    with pytest.raises(ValueError, match="element 0"):
        EpisodeEvaluation([np.zeros(3)]).episode_batches()
