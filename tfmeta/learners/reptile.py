"""Reptile (Nichol, Achiam and Schulman, 2018)."""

import keras
import tensorflow as tf

from tfmeta.learners.gradient_learner import GradientLearner
from tfmeta.learners.padding import episode_inputs

_MAML_ONLY = ("first_order", "multi_step_loss_steps", "first_order_steps", "per_step_batch_norm")


@keras.saving.register_keras_serializable(package="tfmeta")
class Reptile(GradientLearner):
    """Reptile as a Keras model.

    For each task, `train_step` takes `inner_steps` steps of SGD on the support
    loss from the model's weights `theta`, reaching `phi`. The compiled
    optimizer receives the pseudo-gradient `theta - mean_tasks(phi)`, so
    `SGD(learning_rate=epsilon)` gives the paper's update
    `theta += epsilon * (mean(phi) - theta)`, and Adam works as in the
    authors' code. The reported loss is the query loss after adaptation.

    Args:
        model: a built Keras model mapping examples to logits or predictions.
        inner_steps: optimizer steps on the support set per task.
        inner_learning_rate: the inner step size (a Keras `inner_optimizer`
            instance brings its own).
        eval_inner_steps: adaptation steps in `evaluate` and `predict`
            (default: `inner_steps`; the paper uses 50 at test).
        adapt_layers: names of the layers the inner loop adapts (default: all).
        transductive: use the episode's batch statistics in batch norm layers
            when evaluating and predicting.
        **kwargs: `inner_optimizer` (`"sgd"`, `"adam"` or a `keras.optimizers.SGD`
            / `Adam` instance, applied with fresh state for every task; the paper
            uses `keras.optimizers.Adam(1e-3, beta_1=0.0)`),
            `carry_inner_optimizer_state` (True: the inner optimizer's state carries
            across tasks instead, as in the authors' code, whose Adam moments persist
            through training; see `tfmeta.learners.carried_inner_state`), `inner_batch_size`
            (support mini-batch per inner step, cycling through the support set),
            `task_batching` (`"auto"`, `"vectorize"` or `"unroll"`: how the tasks
            of a meta-batch run, see `GradientLearner`) and the arguments of
            `keras.Model` (e.g. `name`). The paper anneals the outer step size
            linearly to zero: `SGD(keras.optimizers.schedules.PolynomialDecay(
            1.0, decay_steps, 0.0))`.

    Example:
    >>> import keras, tfmeta
    >>> learner = tfmeta.Reptile(tfmeta.backbones.mlp(), inner_steps=5,
    ...                          inner_learning_rate=0.02)
    >>> learner.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0),
    ...                 loss="mse", metrics=["mse"])
    >>> history = learner.fit(tfmeta.data.sinusoid(meta_batch_size=4),
    ...                       steps_per_epoch=2, verbose=0)

    """

    def __init__(
        self,
        model: keras.Model,
        inner_steps: int = 5,
        inner_learning_rate: float = 0.1,
        eval_inner_steps: int | None = None,
        adapt_layers=None,
        transductive: bool = True,
        **kwargs,
    ):
        for option in _MAML_ONLY:
            if option in kwargs:
                raise ValueError(
                    f"Invalid argument `{option}` for Reptile: it is an option of MAML's "
                    "query-loss meta-gradient, which Reptile does not compute. Received: "
                    f"{option}={kwargs[option]!r}"
                )
        if kwargs.get("learn_inner_learning_rate") is not None:
            raise ValueError(
                "Invalid argument `learn_inner_learning_rate` for Reptile: its inner learning "
                "rate is fixed (learned rates need the second-order path of MAML). Received: "
                f"learn_inner_learning_rate={kwargs['learn_inner_learning_rate']!r}"
            )
        kwargs.pop("learn_inner_learning_rate", None)
        if kwargs.get("head_init") is not None:
            raise ValueError(
                "Invalid argument `head_init` for Reptile: a head set from each episode's "
                "prototypes has no meta-learned weights for Reptile's step towards the adapted "
                "ones; Proto-MAML is tfmeta.MAML(model, head_init='prototypes'). Received: "
                f"head_init={kwargs['head_init']!r}"
            )
        kwargs.pop("head_init", None)
        super().__init__(
            model,
            inner_steps=inner_steps,
            inner_learning_rate=inner_learning_rate,
            eval_inner_steps=eval_inner_steps,
            adapt_layers=adapt_layers,
            transductive=transductive,
            **kwargs,
        )

    def compute_meta_gradients(self, support_x, support_y, query_x, query_y, sample_weight):
        inputs = episode_inputs(support_x, support_y, query_x, query_y)
        y_pred, fast, updated, *final_state = self.adapt_and_predict(
            inputs, self.inner_steps, first_order=True, training=True, return_inner_state=True
        )
        loss = self._compute_loss(x=inputs, y=query_y, y_pred=y_pred,
                                  sample_weight=sample_weight, training=True)
        # Under tf.distribute the optimizer sums gradients over replicas; dividing by
        # their number averages the pseudo-gradients (a loss gradient is scaled by Keras).
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        gradients = [
            tf.stop_gradient(variable.value - tf.reduce_mean(adapted, axis=0)) / replicas
            for variable, adapted in zip(self.model.trainable_variables, fast)
        ]
        self._store_task_means(updated, *final_state)
        return loss, y_pred, gradients

    def get_config(self):
        config = super().get_config()
        config.pop("learn_inner_learning_rate", None)
        config.pop("per_step_batch_norm", None)
        config.pop("head_init", None)
        return config
