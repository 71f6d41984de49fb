"""Mapping a function over the tasks of a meta-batch: vectorized, unrolled or in chunks."""

import logging
from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

TASK_BATCHING = ("auto", "vectorize", "unroll")
# "auto" without its attempt to vectorize, for task functions known not to vectorize
# (per-task convolution filters): the attempt traces the whole function once more.
NO_VECTORIZE = "no_vectorize"
# Under "auto", meta-batches of up to MAX_UNROLLED_TASKS tasks that cannot be vectorized are
# unrolled; larger ones run as a parallel tf.map_fn over chunks of TASKS_PER_CHUNK unrolled
# tasks, so that tracing time does not grow with the meta-batch. Chunks of 2 measured best for
# conv4 MAML at meta-batch 32 (benchmarks/RESULTS.md): first step 11-14 s against 21 s for 4 and
# 29 s for 8, at the same CPU time per task (first-order: 0.096 s against 0.106 for 4).
MAX_UNROLLED_TASKS = 8
TASKS_PER_CHUNK = 2


def map_tasks(
    task_fn: Callable, tensors: Sequence[tf.Tensor], output_signature: Any, mode: str = "auto"
) -> Any:
    """Applies `task_fn` to each task of a meta-batch and stacks the results.

    `"vectorize"` runs all tasks at once with `tf.vectorized_map` (per-task
    fast weights become batched weights): measured 2x faster than unrolling
    for the sinusoid MLP (110 against 56 steps/s). It needs every op to have a
    batched form, which per-task convolution filters do not. `"unroll"` puts
    one copy of the task per meta-batch entry in the graph (static meta-batch)
    so TensorFlow runs them concurrently; for second-order MAML on conv4 that
    measured 15.5 tasks/s against 13.4 for `tf.map_fn` and 10.8 for
    `tf.vectorized_map` with its while-loop fallback. With a dynamic meta-batch
    size, unrolling becomes `tf.map_fn`. `"auto"` tries to vectorize; when an op
    cannot be vectorized it unrolls meta-batches of up to `MAX_UNROLLED_TASKS`
    tasks, and runs larger ones as a parallel `tf.map_fn` over chunks of
    `TASKS_PER_CHUNK` unrolled tasks (the traced graph, and so the time to the
    first step, stays that of one chunk); `"unroll"` unrolls every task;
    `NO_VECTORIZE` is `"auto"` without trying to vectorize.
    """
    tensors = tuple(tensors)
    if mode in ("auto", "vectorize"):
        # pfor logs every op it cannot convert as an error; under "auto" that is
        # the expected way to find out, so its logger is quiet while it tries.
        logger = tf.get_logger()
        level = logger.level
        if mode == "auto":
            logger.setLevel(logging.CRITICAL)
        try:
            return tf.vectorized_map(
                lambda args: task_fn(*args), tensors, fallback_to_while_loop=False
            )
        except (ValueError, NotImplementedError) as error:
            if mode == "vectorize":
                raise ValueError(
                    "Invalid value for argument `task_batching`: the model cannot be vectorized "
                    "over tasks (tf.vectorized_map failed: "
                    f"{str(error).splitlines()[0]}). Use task_batching='unroll' or 'auto'. "
                    "Received: task_batching='vectorize'"
                ) from error
        finally:
            logger.setLevel(level)
    tasks = tensors[0].shape[0]
    if tasks is not None and (mode == "unroll" or tasks <= MAX_UNROLLED_TASKS):
        return _unrolled(task_fn, tensors, tasks)
    if tasks is not None:
        return _chunked(task_fn, tensors, output_signature, tasks)
    return tf.map_fn(lambda args: task_fn(*args), tensors, fn_output_signature=output_signature)


def _unrolled(task_fn: Callable, tensors: tuple, tasks: int) -> Any:
    results = [task_fn(*(t[index] for t in tensors)) for index in range(tasks)]
    return tf.nest.map_structure(lambda *parts: tf.stack(parts), *results)


def _chunked(task_fn: Callable, tensors: tuple, output_signature: Any, tasks: int) -> Any:
    """`tf.map_fn` over chunks of up to `TASKS_PER_CHUNK` unrolled tasks, run in parallel.

    The traced graph holds one chunk whatever the meta-batch, so the first step of a
    meta-batch of 32 comes about as fast as one of 8 (unrolled) instead of several times
    slower.
    """
    chunk = max(size for size in range(1, TASKS_PER_CHUNK + 1) if tasks % size == 0)
    grouped = tuple(tf.reshape(t, [tasks // chunk, chunk, *t.shape[1:]]) for t in tensors)
    signature = tf.nest.map_structure(lambda dtype: tf.TensorSpec(None, dtype), output_signature)
    outputs = tf.map_fn(lambda args: _unrolled(task_fn, args, chunk), grouped,
                        fn_output_signature=signature, parallel_iterations=tasks // chunk)
    return tf.nest.map_structure(
        lambda x: tf.reshape(x, tf.concat([[tasks], tf.shape(x)[2:]], axis=0)), outputs)


_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean")


def loss_is_mean_over_tasks(compile_loss: Any) -> bool:
    """Whether Keras' compiled loss of a meta-batch is the mean of its tasks' losses.

    True when every loss given to `compile` is one of Keras' own (a name, function or
    `keras.losses.Loss`) reduced by the mean over examples (`"sum_over_batch_size"`, the
    default). A user's loss function or class might mix examples (or tasks) in ways the
    mean does not undo: False.
    """
    if compile_loss is None or compile_loss.reduction not in _MEAN_REDUCTIONS:
        return False
    for loss in tf.nest.flatten(compile_loss._user_loss):
        if loss is None or isinstance(loss, str):
            continue  # Names resolve to Keras' functions, wrapped with the mean.
        if isinstance(loss, keras.losses.Loss):
            function = getattr(loss, "fn", None)  # LossFunctionWrapper's.
            if (loss.reduction not in _MEAN_REDUCTIONS or not _from_keras(type(loss))
                    or (function is not None and not _from_keras(function))):
                return False
        elif not _from_keras(loss):
            return False
    return True


def _from_keras(value: Any) -> bool:
    return getattr(value, "__module__", "").startswith("keras.")

