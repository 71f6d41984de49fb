"""Base class of the metrics that average one value per episode, with a 95% interval."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from tfmeta.metrics.confidence import Z_95


class EpisodicMetric(keras.metrics.Metric):
    """Averages one value per episode and reports the mean with its 95% confidence interval.

    Subclasses implement `episode_values(y_true, y_pred)`, which maps a meta-batch of `B`
    episodes to a `[B]` tensor with one value per episode (for example the query accuracy of
    each episode). The metric accumulates the number of episodes, the sum of the values and the
    sum of their squares over every `update_state` call since the last `reset_state`, and
    `result()` returns

        {name: mean, name + "_ci95": 1.96 * std / sqrt(episodes)}

    with the population standard deviation (`ddof=0`), the same numbers as
    `tfmeta.metrics.mean_confidence_interval` gives on the per-episode values. Keras trainers
    flatten a dict result into the logs, so `fit` and `evaluate` report both `name` and
    `name_ci95` (and `val_name`, `val_name_ci95` for validation).

    The three sums are kept in float64, so `sum_sq / n - mean**2` loses nothing that matters
    for values of the size of accuracies or losses over millions of episodes. Plain sums (rather
    than Welford's running mean and squared deviations) add up across replicas, which is how
    `tf.distribute` merges metric variables (on-read synchronization with SUM aggregation), and
    they compile under XLA. Accelerators without float64 (TPUs) are not supported.

    Every episode counts once, whatever its number of queries; `sample_weight` is not
    supported and raises a `ValueError` when it is not `None`.

    Args:
        name: string, the name of the metric and the key of its mean in the logs; the interval
            is logged under `name + "_ci95"`.
        dtype: the dtype of the result (the sums are float64 regardless); defaults to
            `keras.config.floatx()`.

    """

    def __init__(self, name: str, dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.episodes = self._add_sum("episodes")
        self.total = self._add_sum("total")
        self.total_squares = self._add_sum("total_squares")

    def _add_sum(self, name: str) -> keras.Variable:
        return self.add_variable(shape=(), initializer="zeros", dtype="float64", name=name)

    def episode_values(self, y_true: Any, y_pred: Any) -> tf.Tensor:
        """Return one value per episode, a `[B]` tensor, for a meta-batch of `B` episodes.

        Args:
            y_true: the query targets of the meta-batch.
            y_pred: the predictions for those queries.

        Returns:
            A float32 tensor of shape `[B]`.

        """
        raise NotImplementedError

    def _check_shape(self, argument: str, x: tf.Tensor, rank: int | None, expected: str) -> None:
        """Raise a ValueError when the static rank of `x` is known and is not `rank`."""
        if rank is not None and x.shape.rank is not None and x.shape.rank != rank:
            raise ValueError(
                f"Invalid `{argument}` for {type(self).__name__}: expected {expected} "
                f"(rank {rank}). Received: shape={tuple(x.shape.as_list())}"
            )

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Add the episodes of one meta-batch to the running sums.

        Args:
            y_true: the query targets of the meta-batch, `[B, Q, ...]`.
            y_pred: the predictions for those queries, `[B, Q, ...]`.
            sample_weight: must be `None`: every episode counts once.

        """
        if sample_weight is not None:
            raise ValueError(
                f"{type(self).__name__} does not support `sample_weight`: every episode counts "
                "once and every query in it equally. Received: sample_weight with shape="
                f"{getattr(sample_weight, 'shape', None)}"
            )
        values = ops.cast(self.episode_values(y_true, y_pred), "float64")
        self.episodes.assign_add(ops.sum(ops.ones_like(values)))
        self.total.assign_add(ops.sum(values))
        self.total_squares.assign_add(ops.sum(ops.square(values)))

    def result(self) -> dict[str, tf.Tensor]:
        episodes = ops.maximum(self.episodes, 1.0)
        mean = self.total / episodes
        variance = ops.maximum(self.total_squares / episodes - ops.square(mean), 0.0)
        ci95 = Z_95 * ops.sqrt(variance / episodes)
        return {
            self.name: ops.cast(mean, self.dtype),
            f"{self.name}_ci95": ops.cast(ci95, self.dtype),
        }
