"""Non-finite numbers never pass silently: a diverged step is skipped, a NaN input gives NaN."""

from typing import Any

import tensorflow as tf

from tfmeta.distribute.replicas import replica_mean


def guard_step(loss: tf.Tensor, gradients: list[Any]) -> tuple[tf.Tensor, list[Any]]:
    """Returns `(loss, gradients)`, with the step refused when any of them is not finite.

    A step whose loss or any gradient holds a NaN or an infinity would write
    non-finite weights (and, through a ReLU that maps NaN to 0, could keep
    reporting a finite loss while doing so). Such a step gets zero gradients,
    so plain SGD leaves the weights unchanged (a momentum optimizer such as Adam
    still moves them by its running averages, which stay finite), and its loss
    is reported as NaN, so `keras.callbacks.TerminateOnNaN` and tfmeta-train
    stop. Under `tf.distribute` every replica takes the same decision.

    Args:
        loss: The step's loss (a scalar).
        gradients: One gradient (or None) per trainable variable.

    Returns:
        The loss, NaN for a refused step, and the gradients, zero for a refused step.

    Example:
    >>> loss, (gradient,) = guard_step(tf.constant(1.0), [tf.constant([float("nan")])])
    >>> float(loss), gradient.numpy().tolist()
    (nan, [0.0])

    """
    gradients = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                 for g in gradients]
    checks = [tf.reduce_all(tf.math.is_finite(loss))]
    checks += [tf.reduce_all(tf.math.is_finite(g)) for g in gradients
               if g is not None and g.dtype.is_floating]
    finite = replica_mean(tf.cast(tf.reduce_all(tf.stack(checks)), tf.float32))
    finite = finite >= 1.0
    gradients = [g if g is None else tf.where(finite, g, tf.zeros_like(g)) for g in gradients]
    loss = tf.where(finite, loss, tf.constant(float("nan"), loss.dtype))
    return loss, gradients


def nan_for_non_finite_inputs(inputs: Any, outputs: Any) -> Any:
    """Query predictions `[B, Q, ...]`, NaN wherever they depend on a non-finite input.

    A query example holding a NaN or an infinity gets NaN predictions, and so
    does every query of a task whose support set holds one (its adaptation or
    prototypes depend on every support example). Without this a network could
    hide such an input behind a plausible answer (oneDNN's fused ReLU maps NaN
    to 0). Only floating-point examples are checked: strings (raw text) and
    integers cannot be NaN.

    Args:
        inputs: The episode dict `{"support_x", "support_y", "query_x"}`.
        outputs: The learner's query predictions `[B, Q, ...]`.

    Returns:
        `outputs`, with NaN where an input was not finite.

    Example:
    >>> nan = float("nan")
    >>> inputs = {"support_x": tf.zeros([1, 2, 1]), "support_y": tf.zeros([1, 2]),
    ...           "query_x": tf.constant([[[0.0], [nan]]])}
    >>> nan_for_non_finite_inputs(inputs, tf.ones([1, 2, 3])).numpy()[0, :, 0].tolist()
    [1.0, nan]

    """
    if not isinstance(inputs, dict) or not tf.is_tensor(outputs):
        return outputs
    if not outputs.dtype.is_floating or outputs.shape.rank is None or outputs.shape.rank < 2:
        return outputs
    support_x, query_x = inputs.get("support_x"), inputs.get("query_x")
    if support_x is None or query_x is None:
        return outputs
    support_x, query_x = tf.convert_to_tensor(support_x), tf.convert_to_tensor(query_x)
    if not (support_x.dtype.is_floating and query_x.dtype.is_floating):
        return outputs
    if support_x.shape.rank is None or query_x.shape.rank is None or query_x.shape.rank < 2:
        return outputs
    support_ok = tf.reduce_all(tf.math.is_finite(support_x), axis=range(1, support_x.shape.rank))
    query_ok = tf.reduce_all(tf.math.is_finite(query_x), axis=range(2, query_x.shape.rank))
    ok = tf.logical_and(support_ok[:, None], query_ok)
    ok = tf.reshape(ok, tf.concat([tf.shape(ok), tf.ones([outputs.shape.rank - 2], tf.int32)], 0))
    return tf.where(ok, outputs, tf.constant(float("nan"), outputs.dtype))


def nan_for_non_finite_support(support_x: tf.Tensor, task_state: tf.Tensor) -> tf.Tensor:
    """Task states `[B, P]`, NaN for every task whose support set holds a non-finite example.

    The adapt-once counterpart of `nan_for_non_finite_inputs`: such a task's state (and
    so every prediction made from it, see `nan_for_non_finite_queries`) is NaN.

    Example:
    >>> support_x = tf.constant([[[0.0], [1.0]], [[float("inf")], [1.0]]])
    >>> nan_for_non_finite_support(support_x, tf.ones([2, 3])).numpy()[:, 0].tolist()
    [1.0, nan]
    """
    support_x = tf.convert_to_tensor(support_x)
    if not support_x.dtype.is_floating or support_x.shape.rank is None:
        return task_state
    ok = tf.reduce_all(tf.math.is_finite(support_x), axis=range(1, support_x.shape.rank))
    return tf.where(ok[:, None], task_state, tf.constant(float("nan"), task_state.dtype))


def nan_for_non_finite_queries(task_state: tf.Tensor, query_x: tf.Tensor,
                               outputs: tf.Tensor) -> tf.Tensor:
    """Query predictions `[B, Q, ...]`, NaN where the query or the task's state is not finite.

    Example:
    >>> state = tf.constant([[1.0], [float("nan")]])
    >>> query_x = tf.constant([[[0.0], [float("nan")]], [[0.0], [0.0]]])
    >>> nan_for_non_finite_queries(state, query_x, tf.ones([2, 2, 1])).numpy()[..., 0].tolist()
    [[1.0, nan], [nan, nan]]
    """
    if not outputs.dtype.is_floating or outputs.shape.rank is None or outputs.shape.rank < 2:
        return outputs
    ok = tf.reduce_all(tf.math.is_finite(task_state), axis=1)[:, None]
    query_x = tf.convert_to_tensor(query_x)
    if query_x.dtype.is_floating and query_x.shape.rank is not None:
        ok = tf.logical_and(ok, tf.reduce_all(tf.math.is_finite(query_x),
                                              axis=range(2, query_x.shape.rank)))
    else:
        ok = tf.broadcast_to(ok, tf.shape(outputs)[:2])
    ok = tf.reshape(ok, tf.concat([tf.shape(ok), tf.ones([outputs.shape.rank - 2], tf.int32)], 0))
    return tf.where(ok, outputs, tf.constant(float("nan"), outputs.dtype))


def non_finite_weights(model: Any) -> list[str]:
    """The paths of `model`'s weights that hold a NaN or an infinity (empty when none do).

    Example:
    >>> import keras
    >>> non_finite_weights(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    []

    """
    return [
        variable.path
        for variable in model.weights
        if tf.as_dtype(variable.dtype).is_floating
        and not bool(tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(variable))))
    ]
