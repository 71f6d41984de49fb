"""Few-shot classification accuracy per episode, with its 95% confidence interval."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from tfmeta.metrics.episodic_metric import EpisodicMetric


@keras.saving.register_keras_serializable(package="tfmeta")
class EpisodicAccuracy(EpisodicMetric):
    """Query accuracy averaged over episodes, with its 95% confidence interval.

    Each episode's accuracy is the fraction of its queries whose largest logit is at the true
    label (padded queries of variable episodes, label -1, are left out); the metric averages
    these per-episode accuracies over all the episodes seen since the last reset (every
    episode counts once, as in the few-shot papers) and reports
    `1.96 * std / sqrt(episodes)` (population std, `ddof=0`) beside the mean. `result()`
    returns `{name: mean, name + "_ci95": ci95}`; Keras puts both keys in the logs of `fit` and
    `evaluate`, so with the default name they read `accuracy` and `accuracy_ci95` (and
    `val_accuracy`, `val_accuracy_ci95` for validation data).

    The sums are float64 and the update compiles under XLA and runs under `tf.distribute`.
    `sample_weight` is not supported (a `ValueError` unless it is `None`).

    Args:
        name: string, the key of the mean in the logs (the interval is `name + "_ci95"`).
            Defaults to `"accuracy"`.
        dtype: the dtype of the result. Defaults to `keras.config.floatx()`.

    Call arguments:
        y_true: integer labels of the queries, `[episodes, queries]`.
        y_pred: query logits (or probabilities), `[episodes, queries, ways]`.
        sample_weight: must be `None`.

    Example:
    >>> metric = EpisodicAccuracy()
    >>> labels = [[0, 1], [1, 1]]                        # 2 episodes of 2 queries
    >>> logits = [[[2., 0.], [0., 3.]], [[1., 0.], [0., 1.]]]
    >>> metric.update_state(labels, logits)              # accuracies 1.0 and 0.5
    >>> {key: round(float(value), 4) for key, value in metric.result().items()}
    {'accuracy': 0.75, 'accuracy_ci95': 0.3465}

    With a learner: `learner.compile(optimizer, loss, metrics=[EpisodicAccuracy()])`.

    """

    def __init__(self, name: str = "accuracy", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def episode_values(self, y_true: Any, y_pred: Any) -> tf.Tensor:
        """Return the query accuracy of each episode, a float32 `[episodes]` tensor."""
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        self._check_shape("y_true", y_true, 2, "integer labels of shape [episodes, queries]")
        self._check_shape("y_pred", y_pred, 3, "logits of shape [episodes, queries, ways]")
        if not y_true.shape.is_compatible_with(y_pred.shape[:-1]):
            raise ValueError(
                f"Invalid `y_pred` for {type(self).__name__}: expected logits of shape "
                "[episodes, queries, ways] with the episodes and queries of `y_true`. Received: "
                f"y_true.shape={tuple(y_true.shape.as_list())}, "
                f"y_pred.shape={tuple(y_pred.shape.as_list())}"
            )
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        labels = ops.cast(y_true, "int32")
        # Padded queries (label -1, variable episodes) count for nothing.
        real = ops.cast(ops.greater_equal(labels, 0), "float32")
        correct = ops.cast(ops.equal(predicted, labels), "float32") * real
        return ops.sum(correct, axis=1) / ops.maximum(ops.sum(real, axis=1), 1.0)
