"""The one inner loop: optimizer steps on a task's support loss (fast weights as tensors)."""

from typing import Any

import tensorflow as tf
from keras.src.losses.loss import unscale_loss_for_distribution

from tfmeta.learners.learned_inner_rates import inner_rate
from tfmeta.learners.padding import (
    has_labels,
    loss_arguments,
    mask_absent_classes,
    mixes_examples,
    real_mask,
)
from tfmeta.learners.recomputed_inner_steps import recomputed_adapt


class InnerLoop:
    """The inner loop of the gradient-based learners, as methods of the learner.

    Fast weights are tensors passed to `model.stateless_call` inside nested
    `tf.GradientTape`s, so second-order gradients flow through the steps. The
    learner (`tfmeta.GradientLearner`) sets what the loop reads: `model`, the
    compiled loss, `inner_steps`, `inner_learning_rate`, `learn_inner_learning_rate`,
    `inner_batch_size`, `recompute_inner_steps`, `_inner_rule` (the inner optimizer's
    update), `_plain_sgd`, `_adapted_indices` (the adapted weights' positions in
    `model.trainable_variables`), `_inner_rates` (learned rates, or None),
    `_per_step_batch_norm` (or None) and `_prototype_head` (Proto-MAML's initial head,
    `tfmeta.learners.prototype_head.PrototypeHead`, or None).
    """

    def _learning_rate(self, position: int, step: int) -> Any:
        return inner_rate(self._inner_rates, self.learn_inner_learning_rate, position, step,
                          self.inner_steps, self.inner_learning_rate)

    def inner_loss(self, weights, non_trainable, x, y, training, return_updates=False,
                   classes_from=None):
        """The compiled loss (plus the model's own losses) of `weights` on `(x, y)`.

        With `return_updates`, also the model's updated non-trainable weights. Padded
        support examples (label -1, variable episodes) are left out: the loss is the mean
        over the real ones (see `tfmeta.learners.padding`), and the classes the episode
        lacks, read from the labels `classes_from` (the whole support set's; default `y`),
        get -inf logits.
        """
        sample_weight, labels = None, y
        if has_labels(y):
            if self._calls_on_real(training):
                x, y = tf.boolean_mask(x, real_mask(y)), tf.boolean_mask(y, real_mask(y))
            else:
                y, sample_weight = loss_arguments(y)
        outputs, updates, losses = self.model.stateless_call(
            weights, non_trainable, x, training=training, return_losses=True
        )
        if has_labels(labels):
            outputs = self._mask_absent_classes(outputs, labels if classes_from is None
                                                else classes_from)
        if getattr(self, "_compile_loss", None) is None:
            raise ValueError(
                f"{type(self).__name__} adapts with the compiled loss, but the learner is not "
                "compiled with a loss. Call `compile(optimizer, loss=...)` before `fit`, "
                "`evaluate`, `predict` or `export`."
            )
        loss = self._compile_loss(y, outputs, sample_weight)
        # The compiled loss is divided by the replica count under tf.distribute;
        # the inner loop must see the task's own loss.
        loss = unscale_loss_for_distribution(loss)
        if losses:
            loss = loss + tf.add_n([tf.cast(value, loss.dtype) for value in losses])
        return (loss, updates) if return_updates else loss

    def _mask_absent_classes(self, logits, support_y):
        """-inf logits for the classes an episode lacks (`padding.mask_absent_classes`).

        With a prototype head (Proto-MAML), every episode's classes are `0..max(support_y)`,
        padded or not: its head may be wider than the episode.
        """
        return mask_absent_classes(logits, support_y,
                                   every_episode=getattr(self, "_prototype_head", None) is not None)

    def _calls_on_real(self, training) -> bool:
        """Whether padded examples must be cut out before a model call (not just weighted).

        So where the model mixes the examples of a batch (batch statistics in training);
        XLA, which needs static shapes, keeps them (batch statistics then see padding).
        """
        return bool(training) and self.jit_compile is not True and mixes_examples(self.model)


    def adapt(self, weights, non_trainable, support_x, support_y, steps, first_order, training,
              gradient_function=None):
        """Returns the fast weights after `steps` SGD steps on the support loss of one task.

        Args:
            weights: the model's trainable weights as tensors (meta-parameters).
            non_trainable: the model's non-trainable weights as tensors.
            support_x: the task's support examples `[S, ...]`.
            support_y: the task's support targets `[S, ...]`.
            steps: number of SGD steps.
            first_order: treat inner gradients as constants.
            training: the `training` flag of the model calls.
            gradient_function: replaces the tape's inner gradient (see `adapt_steps`).

        Returns:
            A list of tensors, one per trainable weight of the model.

        """
        every_step = self.adapt_steps(weights, non_trainable, support_x, support_y, steps,
                                      first_order, training,
                                      gradient_function=gradient_function)
        return every_step[-1] if every_step else list(weights)

    def adapt_steps(self, weights, non_trainable, support_x, support_y, steps, first_order,
                    training, statistics=None, carried=None, final_state=None,
                    gradient_function=None):
        """Like `adapt`, but returns the fast weights after every step (a list of `steps`).

        `first_order` is a Python bool, or a scalar boolean tensor that decides at run
        time (MAML's derivative-order annealing): the values are the same either way, and
        a `True` tensor makes the meta-gradient exactly the first-order one. With
        per-step batch norm, each step's support-pass statistics are appended to the list
        `statistics` when one is given. `carried` is `(state, steps)` of a carried inner
        optimizer state to start from instead of fresh state; the inner optimizer's
        final state (per adapted weight) is appended to the list `final_state` when one
        is given. `gradient_function(fast, non_trainable, support_x, support_y, step,
        training, classes_from)`, when given, replaces the tape's gradient of the adapted
        weights (e.g. `tfmeta.learners.closed_form_head.head_gradient_function`, with no
        gradient op; `classes_from` are the whole support set's labels).
        With a `_prototype_head` (Proto-MAML), the steps start from `weights` whose output
        layer is set from the whole support set's prototypes, inside any enclosing tape.
        """
        fast = list(weights)
        if getattr(self, "_prototype_head", None) is not None:
            fast = self._prototype_head.initial_weights(self, fast, non_trainable, support_x,
                                                        support_y, training)
        if (self.recompute_inner_steps and gradient_function is None
                and not tf.is_tensor(first_order) and not first_order):
            return recomputed_adapt(self, fast, non_trainable, support_x, support_y, steps,
                                    training)
        state, steps_before = None, 0
        if carried is not None:
            state, steps_before = list(carried[0]), carried[1]
        elif not self._plain_sgd:
            state = [self._inner_rule.initial_state(fast[i]) for i in self._adapted_indices]
        every_step = []
        for step in range(steps):
            fast, state, step_statistics = self._inner_step(
                fast, non_trainable, support_x, support_y, step, first_order, training,
                state=state, state_step=steps_before + step, gradient_function=gradient_function)
            every_step.append(fast)
            if statistics is not None:
                statistics.append(step_statistics)
        if final_state is not None and state is not None:
            final_state.extend(state)
        return every_step

    def _step_weights(self, fast, non_trainable, step):
        """The weights a model call at inner step `step` uses (per-step batch norm's copies)."""
        if self._per_step_batch_norm is None:
            return fast, non_trainable
        return self._per_step_batch_norm.at_step(fast, non_trainable, step)


    def _inner_step(self, fast, non_trainable, support_x, support_y, step, first_order,
                    training, rates=None, state=None, state_step=None, gradient_function=None):
        """One optimizer step on the support loss: `(fast weights, state, statistics)`.

        `rates` (one per adapted weight) default to `_learning_rate(position, step)`;
        `state` (one per adapted weight) is the inner optimizer's, `None` for plain SGD,
        and `state_step` the steps that state has seen (default: `step`).
        `statistics` are the batch-norm statistics of the step's support pass with
        per-step batch norm, else `None` (always with a `gradient_function`, which
        replaces the tape's gradient; see `adapt_steps`).
        """
        fast = list(fast)
        episode_y = support_y  # The whole support set's labels tell the episode's classes.
        support_x, support_y = self._support_batch(support_x, support_y, step)
        statistics = None
        if gradient_function is not None:
            gradients = gradient_function(fast, non_trainable, support_x, support_y, step,
                                          training, classes_from=episode_y)
        else:
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                adapted = [fast[i] for i in self._adapted_indices]
                tape.watch(adapted)
                weights, step_statistics = self._step_weights(fast, non_trainable, step)
                loss, updates = self.inner_loss(weights, step_statistics, support_x, support_y,
                                                training, return_updates=True,
                                                classes_from=episode_y)
            gradients = tape.gradient(loss, adapted, unconnected_gradients="zero")
            if self._per_step_batch_norm is not None:
                statistics = self._per_step_batch_norm.statistics_of(updates)
        new_state = []
        for position, (index, gradient) in enumerate(zip(self._adapted_indices, gradients)):
            gradient = _order(gradient, first_order)
            rate = self._learning_rate(position, step) if rates is None else rates[position]
            if state is None:
                fast[index] = fast[index] - rate * gradient
            else:
                fast[index], weight_state = self._inner_rule.update(
                    fast[index], gradient, state[position],
                    step if state_step is None else state_step, rate)
                new_state.append(weight_state)
        return fast, (new_state if state is not None else None), statistics

    def _support_batch(self, support_x, support_y, step):
        """The support examples inner step `step` uses (all, or its cyclic mini-batch)."""
        if self.inner_batch_size is None or step is None:
            return support_x, support_y
        positions = step * self.inner_batch_size + tf.range(self.inner_batch_size)
        if not has_labels(support_y):
            rows = positions % tf.shape(support_y)[0]
        else:
            # Cycle through the real examples only (padding, label -1, is skipped): row of
            # the k-th real example, by a one-hot match that vectorizes over tasks.
            real = real_mask(support_y)
            rank = tf.cumsum(tf.cast(real, tf.int32)) - 1
            wanted = positions % tf.maximum(tf.reduce_sum(tf.cast(real, tf.int32)), 1)
            match = tf.logical_and(rank[tf.newaxis] == wanted[:, tf.newaxis], real[tf.newaxis])
            rows = tf.argmax(tf.cast(match, tf.int32), axis=1, output_type=tf.int32)
        return tf.gather(support_x, rows), tf.gather(support_y, rows)


def _order(gradient: tf.Tensor, first_order: Any) -> tf.Tensor:
    """The inner gradient, constant for the meta-gradient when `first_order` holds.

    With a boolean tensor the value is the same either way; only the meta-gradient
    through it is switched off (exactly: the second-order part is multiplied by zero).
    """
    if not tf.is_tensor(first_order):
        return tf.stop_gradient(gradient) if first_order else gradient
    constant = tf.stop_gradient(gradient)
    second_order = tf.cast(tf.logical_not(first_order), gradient.dtype)
    return constant + second_order * (gradient - constant)
