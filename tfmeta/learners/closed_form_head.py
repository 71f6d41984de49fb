"""The inner gradient of a softmax classifier head, written out: no gradient op in the graph.

When the inner loop adapts only a model's last layer (ANIL, MAML with `adapt_layers` on
the head, Baseline / Baseline++ fine-tuning a fresh head on each support set) and the
loss is softmax cross-entropy, the gradient has a closed form. With `F` the head's input
features `[S, D]` (the frozen body's output), `P` the softmax of the logits and `Y` the
one-hot labels, `G = (P - Y) / n` is the gradient of the mean loss with respect to the
logits, and

- a dense head, logits `F W + b`: `dW = F^T G`, `db = sum_rows(G)`;
- a cosine head (`tfmeta.layers.CosineClassifier`), logits `s * F_hat V`, with
  `F_hat = F / (|F| + eps)` row-wise and `V = W / (r + eps)`, `r = |W|` column-wise: with
  `dV = s * F_hat^T G`, `dW = dV / (r + eps) - W * sum_rows(W * dV) / (r * (r + eps)^2)`.

These need only matrix products, softmax and elementwise ops, so an adaptation built
from them converts to LiteRT with builtin ops (a gradient op such as
`SparseSoftmaxCrossEntropyWithLogits`' would need Flex ops, which the pip interpreter
cannot run). `head_gradient_function` returns the drop-in replacement of the tape's
gradient that `GradientLearner`'s inner loop takes (`adapt_steps(...,
gradient_function=...)`): every other part of the step (learning rates, optimizer rule,
support mini-batches) stays the inner loop's own.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from tfmeta.layers.cosine_classifier import CosineClassifier
from tfmeta.learners.model_head import model_body, output_layer
from tfmeta.learners.padding import real_mask

# `(fast, non_trainable, support_x, support_y, step, training, classes_from=None) ->
# gradients` of the adapted weights (in the learner's order); `classes_from` are the whole
# support set's labels when `support_y` is a mini-batch of it.
GradientFunction = Callable[..., list]


def dense_head_gradients(kernel, bias, features, labels, weights, mask_logits=None):
    """`[dW, db]` of the weighted mean softmax cross-entropy of logits `features @ W + b`.

    Args:
        kernel: `[D, N]` weights.
        bias: `[N]` biases, or None (a head without bias).
        features: `[S, D]` inputs of the head.
        labels: `[S]` int class labels.
        weights: `[S]` per-example weights of the mean (1/n for the plain mean).
        mask_logits: a function applied to the logits first (e.g. -inf for the classes a
            padded episode lacks), or None.

    Returns:
        `[dW]` or `[dW, db]`.

    Example:
    >>> import numpy as np
    >>> gradients = dense_head_gradients(tf.zeros([2, 2]), tf.zeros([2]),
    ...     tf.constant([[1.0, 0.0]]), tf.constant([0]), tf.constant([1.0]))
    >>> np.round(gradients[0].numpy(), 3).tolist()
    [[-0.5, 0.5], [0.0, 0.0]]
    """
    logits = tf.matmul(features, kernel)
    if bias is not None:
        logits = logits + bias
    residual = _logit_gradient(logits, labels, weights, mask_logits)
    gradients = [tf.matmul(features, residual, transpose_a=True)]
    if bias is not None:
        gradients.append(tf.reduce_sum(residual, axis=0))
    return gradients


def cosine_head_gradients(kernel, features, labels, weights, scale, epsilon, mask_logits=None):
    """`[dW]` of the weighted mean softmax cross-entropy of a `CosineClassifier`'s logits.

    Args:
        kernel: `[D, N]` class weights.
        features: `[S, D]` inputs of the head.
        labels: `[S]` int class labels.
        weights: `[S]` per-example weights of the mean.
        scale: the head's `scale`.
        epsilon: the head's `epsilon` (added to the norms).
        mask_logits: as for `dense_head_gradients`.

    Returns:
        `[dW]`.
    """
    unit_features = features / (_norm(features, axis=1) + epsilon)
    norms = _norm(kernel, axis=0)  # [1, N]
    directions = kernel / (norms + epsilon)
    logits = scale * tf.matmul(unit_features, directions)
    residual = _logit_gradient(logits, labels, weights, mask_logits)
    d_directions = scale * tf.matmul(unit_features, residual, transpose_a=True)  # [D, N]
    along = tf.reduce_sum(kernel * d_directions, axis=0, keepdims=True)
    return [d_directions / (norms + epsilon)
            - kernel * along / (norms * tf.square(norms + epsilon))]


def _norm(x, axis):
    # Keras' `ops.norm` (what the layer computes): the square root of the sum of squares.
    return tf.sqrt(tf.reduce_sum(tf.square(x), axis=axis, keepdims=True))


def _logit_gradient(logits, labels, weights, mask_logits=None):
    """`(softmax(logits) - onehot(labels)) * weights[:, None]`: the loss' logit gradient."""
    if mask_logits is not None:
        logits = mask_logits(logits)  # an absent class: probability 0, so no gradient
    probabilities = tf.nn.softmax(logits, axis=-1)
    onehot = tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype)
    return (probabilities - onehot) * weights[:, None]


def head_gradient_function(learner) -> GradientFunction:
    """The closed-form inner gradient of `learner` (a `GradientLearner`), or a ValueError.

    Applies when the inner loop adapts exactly the weights of the model's output layer,
    a `keras.layers.Dense` without activation or a `tfmeta.layers.CosineClassifier`, with
    no regulariser, and the compiled loss is Keras' `SparseCategoricalCrossentropy(
    from_logits=True)` (optionally `ignore_class=-1`). Padding is treated as the inner
    loop's loss treats it (`tfmeta.learners.padding`): padded examples (label -1) weigh
    nothing, the classes a padded episode lacks get -inf logits, and where batch statistics
    mix the examples the body sees the real ones only.

    Args:
        learner: a compiled `tfmeta.GradientLearner` (MAML, ANIL, Meta-SGD, the fine-tuner
            of Baseline).

    Returns:
        `gradient(fast, non_trainable, support_x, support_y, step, training, classes_from)`: the
        gradients of the adapted weights, as `tf.GradientTape` would give them. The
        head's input features are computed once per support set when no step changes
        them (no support mini-batches, no per-step batch norm).

    Raises:
        ValueError: naming what keeps the closed form from applying.
    """
    model = learner.model
    head = _output_layer(model)
    adapted = [model.trainable_variables[i] for i in learner._adapted_indices]
    if [id(v) for v in adapted] != [id(v) for v in head.trainable_variables]:
        raise _refusal(
            learner,
            f"it adapts {len(adapted)} weight tensors, not exactly the output layer "
            f"{head.name!r}'s (set adapt_layers=[{head.name!r}], ANIL)")
    _check_loss(learner)
    body = model_body(model, head)
    position = {id(v): i for i, v in enumerate(model.trainable_variables)}
    statistic = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
    step_invariant = learner.inner_batch_size is None and learner._per_step_batch_norm is None
    cache = {}  # The last support set's features, and that support set (kept alive).

    def features_of(fast, non_trainable, support_x, step, training):
        if body is None:
            return support_x
        weights, statistics = learner._step_weights(fast, non_trainable, step)
        features, _ = body.stateless_call(
            [weights[position[id(v)]] for v in body.trainable_variables],
            [statistics[statistic[id(v)]] for v in body.non_trainable_variables],
            support_x, training=training)
        return features

    def gradient(fast, non_trainable, support_x, support_y, step, training, classes_from=None):
        labels = tf.cast(support_y, tf.int32)
        if step_invariant and cache.get("support_x") is support_x:
            features, labels = cache["features"], cache["labels"]
        else:
            examples = support_x
            if learner._calls_on_real(training):  # batch statistics of the real ones only
                real = real_mask(labels)
                examples, labels = tf.boolean_mask(examples, real), tf.boolean_mask(labels, real)
            features = features_of(fast, non_trainable, examples, step, training)
            if step_invariant:
                cache.update(support_x=support_x, features=features, labels=labels)
        dtype = features.dtype
        valid = tf.cast(real_mask(labels), dtype)  # padding (-1, or ignore_class=-1) weighs 0
        labels = tf.maximum(labels, 0)
        weights = valid / tf.maximum(tf.reduce_sum(valid), 1.0)

        def mask_logits(logits):
            return learner._mask_absent_classes(
                logits, support_y if classes_from is None else classes_from)

        head_weights = [fast[position[id(v)]] for v in head.trainable_variables]
        if isinstance(head, CosineClassifier):
            return cosine_head_gradients(head_weights[0], features, labels, weights,
                                         head.scale, head.epsilon, mask_logits)
        return dense_head_gradients(head_weights[0], head_weights[1] if head.use_bias else None,
                                    features, labels, weights, mask_logits)

    return gradient


def _refusal(learner, reason: str) -> ValueError:
    return ValueError(
        f"{type(learner).__name__} cannot adapt with builtin ops only (LiteRT; the "
        f"closed-form head step): {reason}; gradient steps on other layers need gradient ops, "
        "which only Flex kernels run (or use ProtoNet; learner.export() serves any learner in "
        f"TensorFlow). Received: adapt_layers={learner.adapt_layers!r}")


def _output_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer whose output is the model's, when it is a softmax-ready head."""
    head = output_layer(model, "The closed-form head step")
    if isinstance(head, keras.layers.Dense):
        if head.activation not in (None, keras.activations.linear):
            raise ValueError(
                f"The closed-form head step needs logits: the output layer {head.name!r} has "
                f"activation {head.activation.__name__!r} (use None with from_logits=True). "
                f"Received: model={model.name!r}")
        regularized = head.kernel_regularizer or head.bias_regularizer
    elif isinstance(head, CosineClassifier):
        regularized = None
    else:
        raise ValueError(
            "The closed-form head step needs an output layer that is a keras.layers.Dense or "
            f"a tfmeta.layers.CosineClassifier. Received: {type(head).__name__} "
            f"{head.name!r}")
    if regularized or head.activity_regularizer:
        raise ValueError(
            f"The closed-form head step does not differentiate regularisers: the output layer "
            f"{head.name!r} has one. Received: model={model.name!r}")
    return head


def _check_loss(learner) -> int | None:
    """The compiled loss' `ignore_class`, when it is softmax cross-entropy on logits."""
    compile_loss = getattr(learner, "_compile_loss", None)
    losses = tf.nest.flatten(compile_loss._user_loss) if compile_loss is not None else []
    loss = losses[0] if len(losses) == 1 else None
    if (not isinstance(loss, keras.losses.SparseCategoricalCrossentropy)
            or not loss.fn.__module__.startswith("keras.")
            or not loss._fn_kwargs.get("from_logits")
            or loss.reduction not in ("sum_over_batch_size", "mean")
            or getattr(compile_loss, "reduction", None) not in ("sum_over_batch_size", "mean")):
        raise _refusal(
            learner, "its compiled loss is not keras.losses.SparseCategoricalCrossentropy("
            f"from_logits=True) with the mean reduction; received loss={loss!r}")
    ignore_class = loss._fn_kwargs.get("ignore_class")
    if ignore_class is not None and ignore_class != -1:
        raise _refusal(learner, f"ignore_class={ignore_class} (only -1, padding, is supported)")
    return ignore_class
