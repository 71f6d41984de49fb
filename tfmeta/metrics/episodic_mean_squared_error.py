"""Few-shot regression error per episode, with its 95% confidence interval."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from tfmeta.metrics.episodic_metric import EpisodicMetric


@keras.saving.register_keras_serializable(package="tfmeta")
class EpisodicMeanSquaredError(EpisodicMetric):
    """Query mean squared error averaged over episodes, with its 95% confidence interval.

    Each episode's error is the mean of the squared differences over its queries and target
    dimensions; the metric averages these per-episode errors over all the episodes seen since
    the last reset (every episode counts once) and reports `1.96 * std / sqrt(episodes)`
    (population std, `ddof=0`) beside the mean. `result()` returns
    `{name: mean, name + "_ci95": ci95}`, logged by Keras as `mse` and `mse_ci95` with the
    default name (`val_mse`, `val_mse_ci95` for validation data).

    The sums are float64 and the update compiles under XLA and runs under `tf.distribute`.
    `sample_weight` is not supported (a `ValueError` unless it is `None`).

    Args:
        name: string, the key of the mean in the logs (the interval is `name + "_ci95"`).
            Defaults to `"mse"`.
        dtype: the dtype of the result. Defaults to `keras.config.floatx()`.

    Call arguments:
        y_true: query targets, `[episodes, queries, *target_shape]`.
        y_pred: predictions of the same shape as `y_true`.
        sample_weight: must be `None`.

    Example:
    >>> metric = EpisodicMeanSquaredError()
    >>> targets = [[[0.0], [0.0]], [[1.0], [1.0]]]        # 2 episodes of 2 queries
    >>> predictions = [[[1.0], [1.0]], [[1.0], [3.0]]]    # errors 1.0 and 2.0
    >>> metric.update_state(targets, predictions)
    >>> {key: round(float(value), 4) for key, value in metric.result().items()}
    {'mse': 1.5, 'mse_ci95': 0.693}

    With a learner: `learner.compile(optimizer, loss="mse", metrics=[EpisodicMeanSquaredError()])`.

    """

    def __init__(self, name: str = "mse", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def episode_values(self, y_true: Any, y_pred: Any) -> tf.Tensor:
        """Return the query mean squared error of each episode, a float32 `[episodes]` tensor."""
        y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
        if y_true.shape.rank is not None and y_true.shape.rank < 2:
            raise ValueError(
                f"Invalid `y_true` for {type(self).__name__}: expected targets of shape "
                "[episodes, queries, *target_shape] (rank 2 or more). Received: "
                f"shape={tuple(y_true.shape.as_list())}"
            )
        self._check_shape(
            "y_pred",
            y_pred,
            y_true.shape.rank,
            "predictions of the shape of `y_true`, [episodes, queries, *target_shape]",
        )
        if not y_true.shape.is_compatible_with(y_pred.shape):
            raise ValueError(
                f"Invalid `y_pred` for {type(self).__name__}: expected predictions of the shape "
                f"of `y_true`. Received: y_true.shape={tuple(y_true.shape.as_list())}, "
                f"y_pred.shape={tuple(y_pred.shape.as_list())}"
            )
        squared_errors = ops.square(y_pred - y_true)
        episodes = ops.shape(squared_errors)[0]
        return ops.mean(ops.reshape(squared_errors, (episodes, -1)), axis=1)
