"""Proto-MAML's output layer: set on each episode from the class prototypes of its support set.

Proto-MAML (Triantafillou et al., Meta-Dataset, ICLR 2020) starts MAML's inner loop, on every
episode, from an output layer that is a Prototypical Network. With `c_k` the mean of the
support embeddings of class `k` (the body's output, which is the output layer's input), the
dense head's kernel column `k` is `2 c_k` and its bias `-|c_k|^2`, so the initial logit of a
query embedding `q` is `2 q.c_k - |c_k|^2 = -|q - c_k|^2 + |q|^2`: minus the squared
Euclidean distance to the prototype, plus a constant per query that the softmax ignores.
The inner loop then adapts from there (the whole network, or the head alone with
`adapt_layers`), as in MAML.

What the meta-gradient differentiates: the initial head is computed from the body's
(meta-)weights inside the meta-gradient's tape, so the query loss reaches the body along two
paths, through the adapted body on the query examples and through the adapted head back
into `2 c_k` and `-|c_k|^2` and the support embeddings. The model's own head weights are
never used (every episode replaces them): their meta-gradient is zero.

- Second order (`first_order=False`): everything, the inner gradients included.
- First order (`first_order=True`, fo-Proto-MAML, as in Meta-Dataset's code): the inner
  loop's gradients are constants (`tf.stop_gradient`), and nothing else is. So with fast
  weights `phi = theta - sum_t alpha g_t` (head `W' = W0(theta) - sum_t alpha g_t^W`), the
  meta-gradient of a body weight is `dL/dphi_body + dL/dW' . dW0/dtheta + dL/db' .
  db0/dtheta`: the prototype path is kept. With a head-only inner loop, `phi_body = theta`.

Episodes of any ways up to the head's units `N`: an episode's classes are `0..max(support_y)`,
each with a support example (padded examples, label -1, join no prototype); the head's
columns above get a zero prototype and -inf logits in the inner loss, the query predictions
and the served task state (`tfmeta.learners.padding.mask_absent_classes`), as Meta-Dataset
keeps only the episode's ways of its zero-padded head. So one head of the most ways serves
variable episodes and fixed 5-way ones alike.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmeta.layers.prototype_logits import PrototypeLogits
from tfmeta.learners.model_head import model_body, output_layer
from tfmeta.learners.padding import call_on_real, has_labels, real_mask

HEAD_INITS = (None, "prototypes")
_PURPOSE = "head_init='prototypes'"


def prototype_head(prototypes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`(kernel [D, N], bias [N])` of the dense head equal to prototypes `[N, D]`.

    Kernel column `k` is `2 c_k` and bias `k` is `-|c_k|^2`: the logits `q W + b` are
    `-|q - c_k|^2 + |q|^2`.

    Example:
    >>> kernel, bias = prototype_head(tf.constant([[1.0, 0.0], [0.0, 2.0]]))
    >>> kernel.numpy().tolist(), bias.numpy().tolist()
    ([[2.0, 0.0], [0.0, 4.0]], [-1.0, -4.0])
    """
    return 2.0 * tf.transpose(prototypes), -tf.reduce_sum(tf.square(prototypes), axis=-1)


class PrototypeHead:
    """The initial weights of a model's dense output layer on each episode (Proto-MAML).

    Args:
        model: A functional or Sequential Keras model whose output layer is a
            `keras.layers.Dense` with a bias and no activation, reading flat features
            `[batch, D]`.
        adapted_indices: Positions in `model.trainable_variables` of the weights the inner
            loop adapts; they must include the head's.
        adapt_layers: The learner's `adapt_layers`, for the error message.

    Raises:
        ValueError: In one line, for a model without such a head, or a head the inner loop
            would not adapt.
    """

    def __init__(self, model: keras.Model, adapted_indices, adapt_layers=None):
        head = output_layer(model, _PURPOSE)
        if not isinstance(head, keras.layers.Dense):
            raise ValueError(
                f"Invalid value for argument `model`: {_PURPOSE} sets a dense output layer's "
                "kernel and bias from the prototypes, so the model must end in a "
                f"keras.layers.Dense. Received: {type(head).__name__} {head.name!r}")
        if head.activation not in (None, keras.activations.linear) or not head.use_bias:
            raise ValueError(
                f"Invalid value for argument `model`: {_PURPOSE} needs an output layer of "
                f"logits with a bias (Dense(units, use_bias=True), no activation). Received: "
                f"{head.name!r} with activation={head.activation.__name__!r}, "
                f"use_bias={head.use_bias}")
        if len(head.input.shape) != 2:
            raise ValueError(
                f"Invalid value for argument `model`: {_PURPOSE} needs flat features [batch, D] "
                f"at the output layer {head.name!r}'s input (prototypes are mean feature "
                f"vectors). Received: features of shape {tuple(head.input.shape)}")
        position = {id(v): i for i, v in enumerate(model.trainable_variables)}
        self.kernel_index, self.bias_index = position[id(head.kernel)], position[id(head.bias)]
        if not {self.kernel_index, self.bias_index} <= set(adapted_indices):
            raise ValueError(
                f"Invalid value for argument `adapt_layers`: {_PURPOSE} sets the output layer "
                f"{head.name!r} on each episode, so the inner loop must adapt it (add "
                f"{head.name!r}). Received: adapt_layers={adapt_layers!r}")
        self.head = head
        self.body = model_body(model, head)
        statistic = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
        body = self.body
        self._body_weights = ([] if body is None
                              else [position[id(v)] for v in body.trainable_variables])
        self._body_statistics = ([] if body is None
                                 else [statistic[id(v)] for v in body.non_trainable_variables])
        self._prototypes = PrototypeLogits(ways=head.units)

    def features(self, learner, weights, non_trainable, support_x, support_y, training):
        """The head's input features `[S, D]` of one task's support set (zeros for padding).

        The body runs as the inner loop's first step does (`learner._step_weights`), on the
        real examples only where batch statistics would mix them.
        """
        if self.body is None:
            return support_x
        step_weights, statistics = learner._step_weights(weights, non_trainable, 0)

        def embed(x):
            return self.body.stateless_call([step_weights[i] for i in self._body_weights],
                                            [statistics[i] for i in self._body_statistics],
                                            x, training=training)

        if learner._calls_on_real(training):
            features, _ = call_on_real(embed, support_x, real_mask(support_y))
        else:
            features, _ = embed(support_x)
        return features

    def present_classes(self, support_y: tf.Tensor) -> tf.Tensor:
        """`[N]` float32, 1 for the classes `0..max(support_y)` of one task, 0 above."""
        ways = tf.reduce_max(tf.cast(support_y, tf.int32)) + 1
        return tf.cast(tf.range(self.head.units) < ways, tf.float32)

    def initial_weights(self, learner, weights, non_trainable, support_x, support_y, training):
        """`weights` with the head set from one task's support prototypes.

        Args:
            learner: The `tfmeta.GradientLearner` (its `_step_weights`, `_calls_on_real`).
            weights: The model's trainable weights, as tensors.
            non_trainable: Its non-trainable weights, as tensors.
            support_x: `[S, ...]` support examples.
            support_y: `[S]` labels (-1: padding).
            training: The `training` flag of the body's call.

        Returns:
            The list of weights, the head's kernel `2 c^T` and bias `-|c|^2`.
        """
        if not has_labels(support_y):
            raise ValueError(
                f"Invalid episode for {_PURPOSE}: prototypes need integer class labels, and "
                f"this episode has {tf.as_dtype(support_y.dtype).name} targets (regression). "
                "Received: support_y of dtype " + tf.as_dtype(support_y.dtype).name)
        dtype = weights[self.kernel_index].dtype
        features = tf.cast(self.features(learner, weights, non_trainable, support_x, support_y,
                                         training), dtype)
        prototypes = self._prototypes.prototypes(features[tf.newaxis], support_y[tf.newaxis],
                                                 classes_from_labels=True)[0]  # [N, D]
        kernel, bias = prototype_head(prototypes)
        fast = list(weights)
        fast[self.kernel_index], fast[self.bias_index] = kernel, bias
        return fast
