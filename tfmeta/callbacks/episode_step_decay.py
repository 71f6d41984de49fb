"""A learning-rate schedule counted in training episodes (tasks), not optimizer steps."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmeta")
class EpisodeStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Multiplies the learning rate by `decay_rate` every `decay_episodes` training episodes.

    Meta-learning papers state schedules in episodes (tasks seen), while Keras
    optimizers count steps (meta-batches). With `meta_batch_size` B tasks per
    step, the learning rate at optimizer step `t` is

        initial_learning_rate * decay_rate ** floor(t * B / decay_episodes)

    in exact integer arithmetic. Prototypical Networks' "Adam, 1e-3, halved
    every 2,000 episodes" (one episode per step) reads
    `Adam(EpisodeStepDecay(1e-3, decay_episodes=2000))`.

    Why a schedule and not a callback: a `LearningRateSchedule` is a function
    of the optimizer's own step counter, so it is serialised with the
    optimizer (`.keras` files, `ModelCheckpoint`), is restored with it
    (`BackupAndRestore`, `load_weights`: the step counter is an optimizer
    variable), runs inside the compiled (and XLA) train step, and needs no
    Python per step. A callback that assigns the learning rate would lose its
    position on resume unless it saved its own state, and cannot drive an
    optimizer that already has a schedule.

    Args:
        initial_learning_rate: the learning rate before the first decay.
        decay_episodes: training episodes between two decays.
        decay_rate: the factor applied at each decay (0.5 halves it).
        meta_batch_size: episodes (tasks) per optimizer step, B.
        name: the name of the schedule.

    Example:
    >>> schedule = EpisodeStepDecay(1e-3, decay_episodes=2000, meta_batch_size=32)
    >>> [round(float(schedule(step)), 6) for step in (0, 62, 63, 124, 125)]
    [0.001, 0.001, 0.0005, 0.0005, 0.00025]
    >>> optimizer = keras.optimizers.Adam(schedule)

    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_episodes: int,
        decay_rate: float = 0.5,
        meta_batch_size: int = 1,
        name: str = "EpisodeStepDecay",
    ):
        super().__init__()
        if isinstance(initial_learning_rate, bool) or not isinstance(
            initial_learning_rate, (int, float)
        ) or initial_learning_rate <= 0:
            raise ValueError(
                "Invalid value for argument `initial_learning_rate`: expected a positive float. "
                f"Received: initial_learning_rate={initial_learning_rate!r}"
            )
        for argument, value in (("decay_episodes", decay_episodes),
                                ("meta_batch_size", meta_batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"Invalid value for argument `{argument}`: expected a positive integer. "
                    f"Received: {argument}={value!r}"
                )
        if isinstance(decay_rate, bool) or not isinstance(decay_rate, (int, float)) or not (
            0 < decay_rate
        ):
            raise ValueError(
                "Invalid value for argument `decay_rate`: expected a positive float (0.5 "
                f"halves the learning rate). Received: decay_rate={decay_rate!r}"
            )
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_episodes = decay_episodes
        self.decay_rate = float(decay_rate)
        self.meta_batch_size = meta_batch_size
        self.name = name

    def __call__(self, step: Any) -> Any:
        episodes = ops.cast(step, "int64") * self.meta_batch_size
        decays = ops.cast(ops.floor_divide(episodes, self.decay_episodes), "float32")
        return self.initial_learning_rate * ops.power(self.decay_rate, decays)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_episodes": self.decay_episodes,
            "decay_rate": self.decay_rate,
            "meta_batch_size": self.meta_batch_size,
            "name": self.name,
        }
