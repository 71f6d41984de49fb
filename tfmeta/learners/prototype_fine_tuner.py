"""Fitting an embedding model to one support set by the prototype loss, in the one inner loop."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfmeta.learners.gradient_learner import GradientLearner
from tfmeta.learners.padding import call_on_real, loss_arguments, mask_absent_classes, real_mask
from tfmeta.learners.support_augmentation import augment_support
from tfmeta.learners.task_adapters import with_task_adapters
from tfmeta.learners.task_map import NO_VECTORIZE
from tfmeta.learners.test_time_adaptation import TestTimeAdaptation


class PrototypeFineTuner(GradientLearner):
    """The inner loop of `tfmeta.GradientLearner` with the prototype loss, for test time.

    A learner's test-time adaptation (`tfmeta.TestTimeAdaptation`): `fit` takes
    `adaptation.steps` steps of its optimizer on one support set, from the encoder's
    weights (and, for TSA, zero adapters and the identity alignment), with the support
    loss of a prototypical network: the support embeddings' logits against the support
    prototypes (`prototype_logits`' distance), softmax cross-entropy over the real
    examples. Padding (label -1) is cut out before every model call (kept at weight 0
    under XLA, which needs static shapes), so it never changes a result. The model runs
    with `training=False` (moving batch-norm statistics, no dropout).

    It is a helper of ProtoNet and Baseline, not a learner to train.

    Args:
        encoder: The learner's encoder (its weights are shared, never assigned).
        prototype_logits: The `tfmeta.layers.PrototypeLogits` of the support loss.
        adaptation: A `tfmeta.TestTimeAdaptation`.
    """

    def __init__(self, encoder: keras.Model, prototype_logits: Any,
                 adaptation: TestTimeAdaptation, **kwargs):
        model = encoder
        if adaptation.method == "tsa":
            model, _ = with_task_adapters(encoder)
        super().__init__(model, inner_steps=max(adaptation.steps, 1),
                         inner_learning_rate=adaptation.learning_rate,
                         inner_optimizer=adaptation.inner_optimizer, transductive=False,
                         fuse_batch_norm=False, **kwargs)
        self.adaptation = adaptation
        self._prototype_logits = prototype_logits
        shared = {id(v) for v in encoder.weights}
        # The adapters' and alignment's starting values are constants of the graph: they
        # are no weights of the learner (never trained, saved or exported as variables).
        self._starting_values = [None if id(v) in shared else v.numpy()
                                 for v in self.model.trainable_variables]
        # Per-task convolution filters do not vectorize: do not try (it costs a trace).
        convolutional = any(isinstance(layer, keras.layers.Conv2D)
                            for layer in self.model._flatten_layers(include_self=False))
        self.task_batching = NO_VECTORIZE if convolutional else "auto"
        if adaptation.method == "tsa":  # Only the adapters and the alignment are fitted.
            self._adapted_indices = [i for i, value in enumerate(self._starting_values)
                                     if value is not None]

    # === The inner loop's hooks ===

    def inner_loss(self, weights, non_trainable, x, y, training, return_updates=False,
                   classes_from=None):
        del classes_from  # The prototypes, and so the classes, are the batch's own.
        static_shapes = self._static_shapes
        if not static_shapes:
            real = real_mask(y)
            x, y = tf.boolean_mask(x, real), tf.boolean_mask(y, real)
        embeddings, updates = self._embed_call(weights, non_trainable, x, training)
        prototypes = self._prototype_logits.prototypes(embeddings[None], y[None])
        logits = self._prototype_logits.logits(prototypes, embeddings[None])[0]
        logits = mask_absent_classes(logits, y)
        labels, example_weights = loss_arguments(y, dtype=logits.dtype)
        losses = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        loss = tf.reduce_mean(losses * example_weights)
        return (loss, updates) if return_updates else loss

    def _support_batch(self, support_x, support_y, step):
        support_x, support_y = super()._support_batch(support_x, support_y, step)
        augmentation = self.adaptation.augmentation
        if augmentation is None or step is None:
            return support_x, support_y
        return augment_support(support_x, augmentation, (self.adaptation.seed, step),
                               labels=support_y), support_y

    def _read_weights(self):
        weights, non_trainable, carried = super()._read_weights()
        variables = self.model.trainable_variables
        weights = [w if value is None else tf.constant(value, v.dtype)
                   for v, w, value in zip(variables, weights, self._starting_values)]
        return weights, non_trainable, carried

    # === One task ===

    def fit(self, support_x, support_y, static_shapes: bool = False) -> tuple[list, list]:
        """`(fast_weights, non_trainable)` after the adaptation steps on one support set.

        Args:
            support_x: `[S, *example_shape]` support examples.
            support_y: `[S]` labels (-1: padding).
            static_shapes: keep padding in the calls, at weight 0 (XLA).
        """
        self._static_shapes = static_shapes
        weights, non_trainable, _ = self._read_weights()
        fast = self.adapt(weights, non_trainable, support_x, support_y, self.adaptation.steps,
                          first_order=True, training=False)
        return fast, non_trainable

    def embed(self, fast, non_trainable, x, real=None):
        """Flat embeddings `[M, D]` of `[M, ...]` examples under `fast` (padding: zeros)."""
        def call(examples):
            return self._embed_call(fast, non_trainable, examples, False)[0]

        return call(x) if real is None else call_on_real(call, x, real)

    def prototypes(self, fast, non_trainable, support_x, support_y, static_shapes=False):
        """Prototypes `[N, D]` of one support set under `fast`."""
        real = None if static_shapes else real_mask(support_y)
        embeddings = self.embed(fast, non_trainable, support_x, real)
        return self._prototype_logits.prototypes(embeddings[None], support_y[None])[0]

    def _embed_call(self, weights, non_trainable, x, training):
        outputs, updates = self.model.stateless_call(weights, non_trainable, x, training=training)
        outputs = tf.reshape(outputs, [tf.shape(outputs)[0], -1])
        return tf.cast(outputs, self._prototype_logits.compute_dtype), updates

    # === The adapted weights as part of a task's state ===

    def flat_weights(self, fast) -> tf.Tensor:
        """The adapted weights of one task, float32 `[adapted_size]`."""
        return tf.concat([tf.reshape(tf.cast(fast[i], tf.float32), [-1])
                          for i in self._adapted_indices], axis=0)

    def unflatten(self, flat) -> tuple[list, list]:
        """`(fast_weights, non_trainable)` from `flat_weights`' vector."""
        weights, non_trainable, _ = self._read_weights()
        sizes = [int(np.prod(weights[i].shape)) for i in self._adapted_indices]
        fast = list(weights)
        for index, part in zip(self._adapted_indices, tf.split(flat, sizes)):
            fast[index] = tf.cast(tf.reshape(part, weights[index].shape), weights[index].dtype)
        return fast, non_trainable

    @property
    def adapted_size(self) -> int:
        """How many numbers `flat_weights` holds."""
        return self.task_state_size

    _static_shapes = False


def refuse_builtin_ops(learner: Any) -> None:
    """Raises the one-line refusal of a LiteRT (builtin ops) adaptation at test time."""
    raise ValueError(
        "Invalid value for argument `builtin_ops`: test-time adaptation takes gradients "
        "through the encoder, which LiteRT's builtin ops cannot; export a SavedModel "
        "(`learner.export`) instead. Received: builtin_ops=True with "
        f"test_time_adaptation={learner.test_time_adaptation.method!r}"
    )


class Untracked:
    """Holds a learner's `PrototypeFineTuner` (or None) out of Keras' and TensorFlow's tracking.

    The tuner shares the encoder's weights; its own (the adapters' starting values) are
    constants of the graph, so the learner's weights, saving and exports stay those of
    the learner without test-time adaptation.
    """

    def __init__(self, tuner: PrototypeFineTuner | None):
        self.tuner = tuner
