"""Padded episodes: the masks that keep padding out of every loss, prototype and prediction.

Variable episodes (`tfmeta.data.episodes` with `ways`, `shots` or `queries` None) pad the
support and query sets to static sizes; a padded entry has the label -1 (`PADDING_LABEL`).
Padding must never change a result, so the learners use three tools:

- `loss_arguments`: targets and sample weights under which a mean-reduced Keras loss is the
  mean over the REAL examples (Keras' `sum_over_batch_size` divides by every entry, also
  those of weight 0; the weights here are `mask * entries / real entries`).
- `mask_absent_classes`: logits of the classes an episode does not have (labels from
  `max(support_y) + 1` on, when a meta-batch mixes episodes of different ways) are -inf,
  so the softmax, the loss and the argmax are those of the episode's own classes.
- `call_on_real`: a model call on the real examples only, scattered back to the padded
  layout (padding gets zeros), for models whose outputs mix the examples of a batch (batch
  normalisation with batch statistics), where a weight cannot undo a padded example.

The query labels are not model inputs, so `fit`, `evaluate` and `tfmeta-evaluate` pass
the query mask (`query_y >= 0`) as the optional input `inputs[QUERY_MASK]`; `predict`
without it treats every query as real (exact unless batch statistics are used on queries).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

PADDING_LABEL = -1
QUERY_MASK = "query_mask"


def episode_inputs(support_x: Any, support_y: Any, query_x: Any, query_y: Any = None) -> dict:
    """The episode dict, with the query mask `QUERY_MASK` when `query_y` holds labels.

    Example:
    >>> sorted(episode_inputs(1, 2, 3, tf.constant([[0, -1]])))
    ['query_mask', 'query_x', 'support_x', 'support_y']
    """
    inputs = {"support_x": support_x, "support_y": support_y, "query_x": query_x}
    if query_y is not None and has_labels(query_y):
        inputs[QUERY_MASK] = real_mask(query_y)
    return inputs


def has_labels(targets: Any) -> bool:
    """Whether `targets` are integer class labels (which may be padded), not regression targets.

    Example:
    >>> has_labels(tf.constant([0, -1])), has_labels(tf.constant([0.5]))
    (True, False)
    """
    return tf.as_dtype(tf.convert_to_tensor(targets).dtype).is_integer


def real_mask(labels: Any) -> tf.Tensor:
    """`labels >= 0`: True for real entries, False for padding.

    Example:
    >>> real_mask(tf.constant([1, -1])).numpy().tolist()
    [True, False]
    """
    return tf.convert_to_tensor(labels) >= 0


def loss_arguments(y: Any, sample_weight: Any = None, dtype: Any = "float32") -> tuple:
    """`(y, sample_weight)` under which a mean-reduced loss is the mean over real entries.

    Padded labels become 0 (any class: their weight is 0) and every real entry gets the
    weight `entries / real entries`, times `sample_weight` when given. Regression targets
    pass unchanged.

    Example:
    >>> y, w = loss_arguments(tf.constant([[2, -1, 0, -1]]))
    >>> y.numpy().tolist(), w.numpy().tolist()
    ([[2, 0, 0, 0]], [[2.0, 0.0, 2.0, 0.0]])
    """
    y = tf.convert_to_tensor(y)
    if not has_labels(y):
        return y, sample_weight
    real = real_mask(y)
    mask = tf.cast(real, dtype)
    entries = tf.cast(tf.size(y), dtype)
    weights = mask * (entries / tf.maximum(tf.reduce_sum(mask), 1.0))
    if sample_weight is not None:
        weights = weights * tf.cast(sample_weight, dtype)
    return tf.where(real, y, tf.zeros_like(y)), weights


def mask_absent_classes(logits: tf.Tensor, support_y: tf.Tensor,
                        every_episode: bool = False) -> tf.Tensor:
    """Sets to -inf the logits of classes from `max(support_y) + 1` on, per padded episode.

    Only padded episodes (some support label -1) can lack classes: an unpadded episode's
    logits are returned as they are, unless `every_episode` (a learner whose output may be
    wider than any episode, e.g. Proto-MAML's prototype head: every episode's classes are
    `0..max(support_y)`).

    Args:
        logits: `[..., Q, N]` logits (one episode, or a meta-batch `[B, Q, N]`).
        support_y: `[..., S]` labels of the same episodes (padding -1).
        every_episode: mask the classes above the largest label in unpadded episodes too.

    Returns:
        The logits, -inf where the episode has no such class.

    Example:
    >>> mask_absent_classes(tf.zeros([1, 3]), tf.constant([0, 1, -1])).numpy().tolist()
    [[0.0, 0.0, -inf]]
    >>> mask_absent_classes(tf.zeros([1, 3]), tf.constant([1, 0]), True).numpy().tolist()
    [[0.0, 0.0, -inf]]
    """
    ways = tf.cast(tf.reduce_max(support_y, axis=-1), tf.int32) + 1
    present = tf.range(tf.shape(logits)[-1]) < ways[..., tf.newaxis, tf.newaxis]
    if not every_episode:
        padded = tf.reduce_any(support_y < 0, axis=-1)
        present = tf.logical_or(present, tf.logical_not(padded)[..., tf.newaxis, tf.newaxis])
    return tf.where(present, logits, tf.constant(-float("inf"), logits.dtype))


def mixes_examples(model: keras.Model) -> bool:
    """Whether `model`'s outputs (in training) depend on the other examples of the batch.

    True when it has a batch normalisation layer (Keras' or tfmeta's).
    """
    from tfmeta.layers.batch_normalization import BatchNormalization

    return any(isinstance(layer, keras.layers.BatchNormalization | BatchNormalization)
               for layer in model._flatten_layers(include_self=False))


def call_on_real(function: Any, examples: tf.Tensor, real: tf.Tensor) -> Any:
    """`function` applied to the real rows of `examples` only, scattered back into place.

    Args:
        function: Maps `[M, ...]` examples to `[M, ...]` outputs (or a tuple whose first
            item is that, e.g. `(outputs, updated_statistics)`).
        examples: `[R, ...]` rows, padded ones among them.
        real: `[R]` booleans, True for real rows.

    Returns:
        What `function` returns, its first item `[R, ...]` with zeros at padded rows.

    Example:
    >>> out = call_on_real(lambda x: x * 2, tf.constant([1.0, 5.0]), tf.constant([True, False]))
    >>> out.numpy().tolist()
    [2.0, 0.0]
    """
    rows = tf.where(real)
    result = function(tf.gather_nd(examples, rows))
    outputs = result[0] if isinstance(result, tuple | list) else result
    shape = tf.concat([tf.shape(real, out_type=tf.int64), tf.shape(outputs, out_type=tf.int64)[1:]],
                      axis=0)
    scattered = tf.scatter_nd(rows, outputs, shape)
    if isinstance(result, tuple | list):
        return (scattered, *result[1:])
    return scattered
