"""Model-Agnostic Meta-Learning (Finn et al., 2017), second or first order."""

import warnings

import keras
import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import check_bool
from tfmeta.learners.gradient_learner import GradientLearner
from tfmeta.learners.meta_learner import MetaLearner
from tfmeta.learners.padding import episode_inputs
from tfmeta.learners.task_map import loss_is_mean_over_tasks


@keras.saving.register_keras_serializable(package="tfmeta")
class MAML(GradientLearner):
    """Model-Agnostic Meta-Learning as a Keras model.

    For each task of the meta-batch, `train_step` takes `inner_steps` steps of
    SGD on the support loss (the compiled loss), starting from the model's
    weights, then computes the query loss of the adapted weights. The mean
    query loss over tasks is differentiated through the inner loop (the true
    second-order meta-gradient, or the first-order approximation with
    `first_order=True`) and applied by the compiled optimizer.

    Extensions on the same inner loop: `adapt_layers` adapts only the named
    layers (ANIL, Raghu et al., 2020); `learn_inner_learning_rate="per_parameter"`
    learns one inner learning rate per weight (Meta-SGD, Li et al., 2017) and
    `"per_step"` one per weight tensor and inner step (MAML++ LSLR, Antoniou et
    al., 2019); learned rates start at `inner_learning_rate`. MAML++'s multi-step loss
    (`multi_step_loss_steps`) and derivative-order annealing (`first_order_steps`) are
    options too; the cosine annealing of its meta learning rate is a Keras schedule
    (`keras.optimizers.schedules.CosineDecay`, `tfmeta-train --lr_decay=cosine`).
    Proto-MAML (Triantafillou et al., 2020) is `head_init="prototypes"`: on every task the
    inner loop starts from the model's dense output layer set to the support set's class
    prototypes `c_k` (kernel `2 c_k`, bias `-|c_k|^2`, so the first logits are minus the
    squared distances up to a constant per query), and the meta-gradient flows through
    that initialisation into the body; with `first_order=True` (fo-Proto-MAML, as
    Meta-Dataset) only the inner gradients are constants. See
    `tfmeta.learners.prototype_head` for exactly what is differentiated.

    Speed: with Keras' own losses (the mean over query examples), each task's
    meta-gradient is taken where the task runs and the gradients are averaged, which is the
    same meta-gradient without a backward pass through the map over tasks; any other loss
    is differentiated through that map. On CPU, see `GradientLearner` for threads.

    Batch norm: use `tfmeta.layers.BatchNormalization` (as `tfmeta.backbones.conv4`
    does). On TensorFlow, `keras.layers.BatchNormalization` has an exact first
    derivative but not an exact second one (its variance stops the gradient
    through the mean), so second-order MAML warns when the model contains it.

    Args:
        model: a built Keras model mapping examples to logits (classification)
            or predictions (regression).
        inner_steps: SGD steps on the support set per task during meta-training.
        inner_learning_rate: the inner SGD step size (initial value when learned).
        first_order: if True, inner gradients are treated as constants (FOMAML).
        eval_inner_steps: adaptation steps in `evaluate` and `predict`
            (default: `inner_steps`).
        adapt_layers: names of the layers the inner loop adapts (default: all).
        learn_inner_learning_rate: None, `"per_parameter"` or `"per_step"`.
        transductive: use the episode's batch statistics in batch norm layers
            when evaluating and predicting (as MAML does).
        multi_step_loss_steps: MAML++'s multi-step loss: the meta-loss is a weighted sum of
            the query losses after every inner step, the weights annealed towards the last
            step over this many meta-iterations (`multi_step_loss_weights`). None: only the
            last step's query loss (MAML).
        per_step_batch_norm: MAML++'s per-step batch-norm weights, biases and
            statistics (`tfmeta.learners.per_step_batch_norm.PerStepBatchNorm`): one copy
            per inner step, meta-learned and not adapted by the inner loop.
        first_order_steps: MAML++'s derivative-order annealing: first-order meta-gradients
            for this many meta-iterations, then second order. None: always `first_order`.
        head_init: None (the model's own, meta-learned, output layer) or `"prototypes"`
            (Proto-MAML: the model's last layer, a `keras.layers.Dense` with a bias and no
            activation on flat features, is set from each task's support prototypes before
            the inner loop; its units are the most ways an episode may have, and
            `adapt_layers`, if given, must include it).
        recompute_inner_steps: recompute each inner step in the backward pass
            instead of keeping its intermediate tensors (gradient
            checkpointing): the same meta-gradient with memory that grows far
            less with `inner_steps`, for some extra compute. Only second-order
            MAML keeps those tensors, so it changes nothing with
            `first_order=True`.
        **kwargs: `task_batching` (`"auto"`, `"vectorize"` or `"unroll"`: how
            the tasks of a meta-batch run, see `GradientLearner`) and the
            arguments of `keras.Model` (e.g. `name`).

    Example:
    >>> import keras, tfmeta
    >>> learner = tfmeta.MAML(tfmeta.backbones.mlp(), inner_steps=1,
    ...                       inner_learning_rate=0.01)
    >>> learner.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse",
    ...                 metrics=["mse"])
    >>> history = learner.fit(tfmeta.data.sinusoid(meta_batch_size=4),
    ...                       steps_per_epoch=2, verbose=0)

    fo-Proto-MAML on Omniglot-sized images (the head has 5 units, the most ways):

    >>> proto_maml = tfmeta.MAML(tfmeta.backbones.conv4((28, 28, 1), num_classes=5),
    ...                          head_init="prototypes", first_order=True)

    """

    def __init__(
        self,
        model: keras.Model,
        inner_steps: int = 1,
        inner_learning_rate: float = 0.01,
        first_order: bool = False,
        eval_inner_steps: int | None = None,
        adapt_layers=None,
        learn_inner_learning_rate: str | None = None,
        transductive: bool = True,
        recompute_inner_steps: bool = False,
        multi_step_loss_steps: int | None = None,
        first_order_steps: int | None = None,
        per_step_batch_norm: bool = False,
        head_init: str | None = None,
        **kwargs,
    ):
        _check_schedule_steps("multi_step_loss_steps", multi_step_loss_steps)
        _check_schedule_steps("first_order_steps", first_order_steps)
        if first_order_steps is not None and (first_order or recompute_inner_steps):
            raise ValueError(
                "Invalid value for argument `first_order_steps`: derivative-order annealing "
                "switches from first to second order, so it needs first_order=False and "
                "recompute_inner_steps=False. Received: first_order_steps="
                f"{first_order_steps!r}, first_order={first_order!r}, "
                f"recompute_inner_steps={recompute_inner_steps!r}"
            )
        super().__init__(
            model,
            inner_steps=inner_steps,
            inner_learning_rate=inner_learning_rate,
            eval_inner_steps=eval_inner_steps,
            adapt_layers=adapt_layers,
            learn_inner_learning_rate=learn_inner_learning_rate,
            transductive=transductive,
            recompute_inner_steps=recompute_inner_steps,
            per_step_batch_norm=per_step_batch_norm,
            head_init=head_init,
            **kwargs,
        )
        self.first_order = check_bool("first_order", first_order)
        self.multi_step_loss_steps = multi_step_loss_steps
        self.first_order_steps = first_order_steps
        if not self.first_order and not self._inner_rule.smooth:
            raise ValueError(
                "Invalid value for argument `inner_optimizer`: second-order MAML differentiates "
                f"through the inner updates, and {self._inner_rule.name!r}'s is not "
                "differentiable everywhere (sqrt of a zero second moment). Use it with "
                f"first_order=True. Received: inner_optimizer={self._inner_rule.name!r}, "
                "first_order=False"
            )
        if not self.first_order:
            _warn_about_keras_batch_norm(self.model)

    def compute_meta_gradients(self, support_x, support_y, query_x, query_y, sample_weight):
        inputs = episode_inputs(support_x, support_y, query_x, query_y)
        first_order = self.first_order
        if self.first_order_steps is not None:
            first_order = self.optimizer.iterations < self.first_order_steps
        every_step = self.multi_step_loss_steps is not None
        if self._loss_is_mean_over_tasks():
            return self._task_map_meta_gradients(inputs, query_y, sample_weight, first_order,
                                                 every_step)
        with tf.GradientTape() as tape:
            y_pred, _, updated, *final_state = self.adapt_and_predict(
                inputs, self.inner_steps, first_order=first_order, training=True,
                every_step=every_step, return_inner_state=True,
            )
            loss, y_pred = self._meta_loss(inputs, query_y, y_pred, sample_weight, every_step)
            scaled_loss = self.optimizer.scale_loss(loss)
        # Zeros for weights the loss does not use (e.g. batch norm's own gamma and beta
        # under per-step batch norm), made here: the tape cannot make them for Keras
        # variables.
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        gradients = [tf.zeros_like(variable) if gradient is None else gradient
                     for variable, gradient in zip(self.trainable_variables, gradients)]
        self._store_task_means(updated, *final_state)
        return loss, y_pred, gradients

    def _loss_is_mean_over_tasks(self) -> bool:
        """Whether the meta-batch's loss is the mean of its tasks' losses.

        It is with Keras' own losses (`loss_is_mean_over_tasks`) and Keras' own
        `compute_loss`, which a subclass may override to mix tasks.
        """
        return (type(self).compute_loss in (keras.Model.compute_loss, MetaLearner.compute_loss)
                and loss_is_mean_over_tasks(self._compile_loss))

    def _task_map_meta_gradients(self, inputs, query_y, sample_weight, first_order,
                                 every_step):
        """`compute_meta_gradients` with each task differentiated inside the task map.

        The same loss and gradients (the compiled loss of a meta-batch is the mean of its
        tasks'; see `adapt_and_differentiate`), without a backward pass through the loop
        that runs large meta-batches.
        """
        def task_loss(episode, query_y, y_pred, sample_weight):
            return self._meta_loss(episode, query_y, y_pred, sample_weight, every_step)[0]

        y_pred, _, updated, final_state, losses, gradients = self.adapt_and_differentiate(
            inputs, query_y, sample_weight, self.inner_steps, first_order, every_step,
            task_loss)
        if every_step:
            y_pred = y_pred[:, -1]
        self._store_task_means(updated, final_state)
        return (tf.reduce_mean(losses, axis=0),
                y_pred, [tf.reduce_mean(gradient, axis=0) for gradient in gradients])

    def _meta_loss(self, inputs, query_y, y_pred, sample_weight, every_step):
        """The meta-batch's query loss and last-step predictions (MAML++'s sum over steps)."""
        if every_step:
            return self._multi_step_loss(inputs, query_y, y_pred, sample_weight)
        loss = self._compute_loss(x=inputs, y=query_y, y_pred=y_pred,
                                  sample_weight=sample_weight, training=True)
        return loss, y_pred

    def _multi_step_loss(self, inputs, query_y, y_pred, sample_weight):
        """MAML++'s weighted sum of the per-step query losses, and the last predictions."""
        weights = multi_step_loss_weights(self.inner_steps, self.optimizer.iterations,
                                          self.multi_step_loss_steps)
        loss = 0.0
        for step in range(self.inner_steps):
            step_loss = self._compute_loss(x=inputs, y=query_y, y_pred=y_pred[:, step],
                                           sample_weight=sample_weight, training=True)
            loss = loss + tf.cast(weights[step], step_loss.dtype) * step_loss
        return loss, y_pred[:, -1]

    def get_config(self):
        return {
            **super().get_config(),
            "first_order": self.first_order,
            "multi_step_loss_steps": self.multi_step_loss_steps,
            "first_order_steps": self.first_order_steps,
        }


def multi_step_loss_weights(steps: int, iteration, anneal_steps: int) -> tf.Tensor:
    """MAML++'s importance of the query loss after each inner step, at a meta-iteration.

    All steps weigh `1/steps` at first; over `anneal_steps` meta-iterations the weight of
    every step but the last falls linearly to a floor of `0.03/steps` and the last step's
    rises to `1 - (steps - 1) * 0.03/steps` (Antoniou et al., 2019, whose schedule counts
    epochs where this counts meta-iterations). The weights always sum to 1.

    Args:
        steps: Inner steps, S.
        iteration: The meta-iteration (e.g. `optimizer.iterations`).
        anneal_steps: Meta-iterations to reach the final weights.

    Returns:
        A float64 `[steps]` tensor (cast to the loss' type where it is used).

    Example:
    >>> [round(float(w), 4) for w in multi_step_loss_weights(4, 0, 100)]
    [0.25, 0.25, 0.25, 0.25]
    >>> [round(float(w), 4) for w in multi_step_loss_weights(4, 50, 100)]
    [0.125, 0.125, 0.125, 0.625]
    """
    progress = tf.cast(iteration, tf.float64) / float(anneal_steps)
    floor = 0.03 / steps
    earlier = tf.maximum(1.0 / steps - progress / steps, floor)
    last = tf.minimum(1.0 / steps + progress * (steps - 1) / steps, 1.0 - (steps - 1) * floor)
    return tf.concat([tf.fill([steps - 1], earlier), tf.reshape(last, [1])], axis=0)


def _check_schedule_steps(name: str, value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected a positive integer (meta-iterations) "
            f"or None. Received: {name}={value!r}"
        )


def _warn_about_keras_batch_norm(model: keras.Model) -> None:
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            warnings.warn(
                f"Layer {layer.name!r} is a keras.layers.BatchNormalization, whose second "
                "derivative on TensorFlow drops a term (tf.nn.moments stops the gradient "
                "through the mean), so second-order MAML's meta-gradient through it is "
                "approximate. Use tfmeta.layers.BatchNormalization (same arguments and "
                "moving statistics, exact, and faster on images) or first_order=True.",
                stacklevel=3,
            )
            return
