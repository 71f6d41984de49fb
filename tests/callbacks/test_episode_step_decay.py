"""EpisodeStepDecay: a learning-rate schedule in episodes that travels with the optimizer."""

import keras
import numpy as np
import pytest
from callback_episodes import episode_dataset, make_learner

from tfmeta.callbacks import EpisodeStepDecay


def test_decays_every_decay_episodes_counted_in_tasks():
    schedule = EpisodeStepDecay(1.0, decay_episodes=10, decay_rate=0.5, meta_batch_size=3)
    # Episodes seen after each step: 0, 3, 6, 9, 12, ..., 21: decays at 12 and 21.
    rates = [float(schedule(step)) for step in range(8)]
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_protonet_paper_schedule():
    schedule = EpisodeStepDecay(1e-3, decay_episodes=2000)
    assert float(schedule(1999)) == pytest.approx(1e-3)
    assert float(schedule(2000)) == pytest.approx(5e-4)
    assert float(schedule(10_000)) == pytest.approx(1e-3 / 32)


def test_config_round_trip():
    schedule = EpisodeStepDecay(1e-3, decay_episodes=2000, decay_rate=0.1, meta_batch_size=32)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule))
    assert isinstance(restored, EpisodeStepDecay)
    assert restored.get_config() == schedule.get_config()


def test_drives_fit_and_survives_keras_saving(tmp_path):
    schedule = EpisodeStepDecay(1e-2, decay_episodes=4, meta_batch_size=2)
    learner = make_learner("protonet", optimizer=keras.optimizers.Adam(schedule))
    learner.fit(episode_dataset(tasks=8, repeat=True), steps_per_epoch=3, verbose=0)
    # 3 steps of 2 episodes: one decay (at 4 episodes).
    assert float(learner.optimizer.learning_rate) == pytest.approx(5e-3)
    learner.save(tmp_path / "learner.keras")
    loaded = keras.saving.load_model(tmp_path / "learner.keras")
    assert isinstance(loaded.optimizer._learning_rate, EpisodeStepDecay)
    assert loaded.optimizer._learning_rate.get_config() == schedule.get_config()
    assert int(loaded.optimizer.iterations) == 3
    loaded.fit(episode_dataset(tasks=8, repeat=True), steps_per_epoch=1, verbose=0)
    # 4 steps = 8 episodes: the second decay.
    assert float(loaded.optimizer.learning_rate) == pytest.approx(2.5e-3)
    np.testing.assert_allclose(float(learner.optimizer.learning_rate), 5e-3)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"initial_learning_rate": 0.0, "decay_episodes": 10}, "initial_learning_rate"),
        ({"initial_learning_rate": 1e-3, "decay_episodes": 0}, "decay_episodes"),
        ({"initial_learning_rate": 1e-3, "decay_episodes": 2.5}, "decay_episodes"),
        ({"initial_learning_rate": 1e-3, "decay_episodes": 10, "meta_batch_size": 0},
         "meta_batch_size"),
        ({"initial_learning_rate": 1e-3, "decay_episodes": 10, "decay_rate": -0.5},
         "decay_rate"),
    ],
)
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        EpisodeStepDecay(**kwargs)
