"""Model-Agnostic Meta-Learning (Finn et al., 2017), second or first order."""

import warnings

import keras
import tensorflow as tf

from tfmeta.data.arguments import check_bool
from tfmeta.learners.gradient_learner import GradientLearner


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
    al., 2019); learned rates start at `inner_learning_rate`.

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
        **kwargs,
    ):
        super().__init__(
            model,
            inner_steps=inner_steps,
            inner_learning_rate=inner_learning_rate,
            eval_inner_steps=eval_inner_steps,
            adapt_layers=adapt_layers,
            learn_inner_learning_rate=learn_inner_learning_rate,
            transductive=transductive,
            recompute_inner_steps=recompute_inner_steps,
            **kwargs,
        )
        self.first_order = check_bool("first_order", first_order)
        if not self.first_order:
            _warn_about_keras_batch_norm(model)

    def compute_meta_gradients(self, support_x, support_y, query_x, query_y, sample_weight):
        inputs = {"support_x": support_x, "support_y": support_y, "query_x": query_x}
        with tf.GradientTape() as tape:
            y_pred, _, updated = self.adapt_and_predict(
                inputs, self.inner_steps, first_order=self.first_order, training=True
            )
            loss = self._compute_loss(x=inputs, y=query_y, y_pred=y_pred,
                                      sample_weight=sample_weight, training=True)
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_variables,
                                  unconnected_gradients="zero")
        self._update_moving_statistics(updated)
        return loss, y_pred, gradients

    def get_config(self):
        return {**super().get_config(), "first_order": self.first_order}


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
