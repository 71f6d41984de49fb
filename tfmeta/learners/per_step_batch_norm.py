"""MAML++'s per-step batch normalisation: weights, biases and statistics for every inner step."""

from __future__ import annotations

import keras
import numpy as np

from tfmeta.layers.batch_normalization import BatchNormalization

BATCH_NORM_TYPES = (BatchNormalization, keras.layers.BatchNormalization)


class PerStepBatchNorm:
    """Per-step batch-norm weights (BNWB) and statistics (BNRS) of Antoniou et al. (2019).

    Every batch-norm layer of the model gets one copy of its `gamma`/`beta` and of its
    moving statistics per inner step, as weights of the learner: `[steps, channels]`
    each, starting from the layer's own values. Inner step `k` (its support pass) and the
    query pass after it use copy `k` (steps beyond the last copy, e.g. with more
    evaluation steps, use the last). The copies of `gamma`/`beta` are meta-learned and
    not adapted by the inner loop (as in MAML++); statistics copy `k` moves towards the
    batch statistics of inner step `k`'s support pass, by the layer's own rule.

    Args:
        learner: The learner that owns the copies (`add_weight`).
        model: The adapted model.
        steps: Inner steps in meta-training (the number of copies).

    Raises:
        ValueError: If the model has no batch-norm layer.

    Example:
    >>> import keras, tfmeta
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
    ...                           tfmeta.layers.BatchNormalization(), keras.layers.Dense(2)])
    >>> learner = tfmeta.MAML(model, inner_steps=2, per_step_batch_norm=True)
    >>> [tuple(v.shape) for v in learner._per_step_batch_norm.weights]
    [(2, 4), (2, 4)]
    """

    def __init__(self, learner: keras.Model, model: keras.Model, steps: int):
        layers = [layer for layer in model._flatten_layers(include_self=False)
                  if isinstance(layer, BATCH_NORM_TYPES)]
        if not layers:
            raise ValueError(
                "Invalid value for argument `per_step_batch_norm`: the model has no batch "
                f"normalization layer. Received: per_step_batch_norm=True, model={model.name!r}"
            )
        trainable = {id(v): i for i, v in enumerate(model.trainable_variables)}
        statistics = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
        self.steps = steps
        self.trainable_indices = [trainable[id(v)] for layer in layers
                                  for v in layer.trainable_variables]
        self.statistic_indices = [statistics[id(v)] for layer in layers
                                  for v in layer.non_trainable_variables]
        self.weights = [self._copies(learner, v, True) for layer in layers
                        for v in layer.trainable_variables]
        self.statistics = [self._copies(learner, v, False) for layer in layers
                           for v in layer.non_trainable_variables]

    def _copies(self, learner: keras.Model, variable, trainable: bool):
        return learner.add_weight(
            shape=(self.steps, *variable.shape),
            initializer=keras.initializers.Constant(np.asarray(variable.numpy())),
            trainable=trainable,
            name=variable.path.replace("/", "_") + "_per_step",
        )

    def at_step(self, fast: list, non_trainable: list, step: int | None) -> tuple[list, list]:
        """The model's weights for inner step `step`, batch-norm entries from its copy.

        Copy `min(step, steps - 1)` is used (`step=None`: the last copy).
        """
        index = self.steps - 1 if step is None else min(step, self.steps - 1)
        fast, non_trainable = list(fast), list(non_trainable)
        for position, copies in zip(self.trainable_indices, self.weights):
            fast[position] = copies[index]
        for position, copies in zip(self.statistic_indices, self.statistics):
            non_trainable[position] = copies[index]
        return fast, non_trainable

    def statistics_of(self, updated: list) -> list:
        """The batch-norm entries of a model call's updated non-trainable weights."""
        return [updated[position] for position in self.statistic_indices]
