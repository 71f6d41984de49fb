"""Prototypical Networks (Snell, Swersky and Zemel, 2017)."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import check_bool, check_float
from tfmeta.layers.prototype_logits import PrototypeLogits
from tfmeta.learners.episode import embed_examples, unpack_episode
from tfmeta.learners.meta_learner import MetaLearner
from tfmeta.learners.padding import QUERY_MASK, call_on_real, mask_absent_classes, real_mask
from tfmeta.learners.prototype_fine_tuner import (
    PrototypeFineTuner,
    Untracked,
    refuse_builtin_ops,
)
from tfmeta.learners.task_map import map_tasks
from tfmeta.learners.test_time_adaptation import as_test_time_adaptation


@keras.saving.register_keras_serializable(package="tfmeta")
class ProtoNet(MetaLearner):
    """Prototypical Networks as a Keras model.

    The encoder embeds the support and query examples of every episode (in one
    batch); class prototypes are the mean support embeddings, and the query
    logits are minus the squared Euclidean distance to each prototype (or a
    scaled cosine similarity). Train it with the ordinary compiled loss,
    `SparseCategoricalCrossentropy(from_logits=True)`.

    The number of ways comes from the episode (`max(support_y) + 1`) unless
    `ways` is given; XLA (`jit_compile=True`) needs it static, so give `ways`
    there. Batch norm in the encoder works as in any Keras model: batch
    statistics in training, moving statistics in `evaluate`/`predict`.

    Args:
        encoder: a built Keras model mapping examples to embeddings `[batch, D]`
            (or to any shape, flattened).
        distance: `"squared_euclidean"` (the paper) or `"cosine"`.
        ways: the number of classes per episode, or None to read it from labels.
        cosine_scale: the scale of cosine logits.
        learn_cosine_scale: whether that scale is trained.
        test_time_adaptation: None, "finetune", "tsa" or a `tfmeta.TestTimeAdaptation`:
            at test time (`evaluate`, `predict`, `adapt_step`, exports), fit the whole
            encoder ("finetune") or task-specific adapters beside its frozen convolutions
            ("tsa") to each support set by the prototype loss, then predict the queries
            by the prototypes of the adapted features. `fit` trains as without it.
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Example:
    >>> import keras, tfmeta
    >>> learner = tfmeta.ProtoNet(tfmeta.backbones.conv4((28, 28, 1)), ways=5)
    >>> learner.compile(
    ...     optimizer=keras.optimizers.Adam(1e-3),
    ...     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    ...     metrics=["accuracy"])

    Test-time adaptation to a new domain (here TSA, 40 Adam steps per support set):
    >>> adapting = tfmeta.ProtoNet(tfmeta.backbones.conv4((28, 28, 1)), ways=5,
    ...                            test_time_adaptation="tsa")

    """

    def __init__(self, encoder, distance="squared_euclidean", ways=None, cosine_scale=10.0,
                 learn_cosine_scale=False, test_time_adaptation=None, **kwargs):
        super().__init__(encoder, argument="encoder", **kwargs)
        encoder = self.encoder = self._with_fused_batch_norm(encoder)
        self.distance = distance
        self.cosine_scale = check_float("cosine_scale", cosine_scale)
        self.learn_cosine_scale = check_bool("learn_cosine_scale", learn_cosine_scale)
        self.prototype_logits = PrototypeLogits(
            ways=ways, distance=distance, scale=self.cosine_scale,
            learn_scale=self.learn_cosine_scale,
            name="prototype_logits",
            # Distances as |q|^2 - 2 q.p + |p|^2 cancel badly in 16-bit floats, so under a
            # mixed-precision policy they are computed in float32 (like Keras' losses).
            dtype="float32" if {encoder.compute_dtype, keras.config.dtype_policy().compute_dtype}
            & {"float16", "bfloat16"} else None,
        )
        self.ways = self.prototype_logits.ways  # checked there (NumPy integers become int)
        self.test_time_adaptation = as_test_time_adaptation(test_time_adaptation, "ProtoNet")
        self._adapter = Untracked(
            None if self.test_time_adaptation is None
            else PrototypeFineTuner(encoder, self.prototype_logits, self.test_time_adaptation))

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, jit_compile="auto", **kwargs):
        if self.ways is None:
            if jit_compile is True:
                raise ValueError(
                    "ProtoNet with `ways=None` reads the number of ways from each episode's "
                    "labels, which XLA cannot compile (it needs static shapes). Give "
                    "`ProtoNet(..., ways=N)` to use `jit_compile=True`. Received: ways=None, "
                    "jit_compile=True"
                )
            if jit_compile == "auto":
                jit_compile = False  # "auto" would pick XLA on GPU, which needs static ways.
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics,
                        jit_compile=jit_compile, **kwargs)

    def fixed_ways(self):
        """`ways` when given, else None (the number of ways comes from the labels)."""
        return self.ways

    def embed(self, examples, training=False, example_rank=None):
        """Embeddings `[..., D]` of examples `[..., *example_shape]` (any leading dims).

        The rank of one example is `example_rank`, else the encoder's input rank,
        else (a subclassed encoder) `examples` is taken as `[B, S, *example_shape]`.
        """
        return embed_examples(self.encoder, examples, training, example_rank)

    def call(self, inputs, training=False):
        support_x, support_y, query_x = unpack_episode(inputs, model=self.encoder)
        if not training and self._adapter.tuner is not None:
            return self._adapted_logits(support_x, support_y, query_x, inputs.get(QUERY_MASK))
        tasks = tf.shape(support_x)[0]
        support_size = tf.shape(support_x)[1]
        # One encoder pass over support and query of every task.
        examples = tf.concat(
            [
                tf.reshape(support_x, tf.concat([[-1], tf.shape(support_x)[2:]], 0)),
                tf.reshape(query_x, tf.concat([[-1], tf.shape(query_x)[2:]], 0)),
            ],
            axis=0,
        )

        def embed(x):
            return self.embed(x, training=training, example_rank=support_x.shape.rank - 2)

        if self.jit_compile is True:  # XLA needs static shapes: padding is embedded too.
            embeddings = embed(examples)
        else:
            # Padded examples (variable episodes) never reach the encoder: they would
            # change its batch statistics, and cost time.
            query_real = inputs.get(QUERY_MASK)
            if query_real is None:
                query_real = tf.ones(tf.shape(query_x)[:2], tf.bool)
            real = tf.concat([tf.reshape(real_mask(support_y), [-1]),
                              tf.reshape(query_real, [-1])], axis=0)
            embeddings = call_on_real(embed, examples, real)
        features = tf.shape(embeddings)[-1]
        split = tasks * support_size
        support_embeddings = tf.reshape(
            embeddings[:split], tf.stack([tasks, support_size, features])
        )
        query_embeddings = tf.reshape(embeddings[split:], tf.stack([tasks, -1, features]))
        support_embeddings = tf.ensure_shape(
            support_embeddings, support_x.shape[:2].concatenate([None]))
        query_embeddings = tf.ensure_shape(query_embeddings, query_x.shape[:2].concatenate([None]))
        logits = self.prototype_logits(support_embeddings, support_y, query_embeddings)
        return mask_absent_classes(logits, support_y)

    # === Test-time adaptation (tfmeta.TestTimeAdaptation) ===

    def with_test_time_adaptation(self, test_time_adaptation) -> "ProtoNet":
        """This ProtoNet on the same encoder (shared weights), adapting at test time.

        Args:
            test_time_adaptation: None, "finetune", "tsa" or a `tfmeta.TestTimeAdaptation`.

        Returns:
            A new, uncompiled `ProtoNet`; compile it as this one to evaluate it.
        """
        config = self.get_config()
        config.pop("encoder")
        config["test_time_adaptation"] = test_time_adaptation
        learner = ProtoNet(self.encoder, **config)
        learner.prototype_logits.set_weights(self.prototype_logits.get_weights())
        return learner

    def _adapted_logits(self, support_x, support_y, query_x, query_real):
        """Query logits after each task's test-time adaptation on its support set."""
        tuner = self._adapter.tuner
        static = self.jit_compile is True  # XLA: padding stays in the calls, at weight 0.
        if query_real is None:
            query_real = tf.ones(tf.shape(query_x)[:2], tf.bool)

        def task(support_x, support_y, query_x, query_real):
            fast, non_trainable = tuner.fit(support_x, support_y, static)
            prototypes = tuner.prototypes(fast, non_trainable, support_x, support_y, static)
            queries = tuner.embed(fast, non_trainable, query_x, None if static else query_real)
            logits = self.prototype_logits.logits(prototypes[None], queries[None])[0]
            return mask_absent_classes(logits, support_y)

        return map_tasks(task, (support_x, support_y, query_x, query_real),
                         tf.as_dtype(self.prototype_logits.compute_dtype), tuner.task_batching)

    # === Adapt once, predict many: the prototypes are the task's state ===

    @property
    def example_model(self) -> keras.Model:
        return self.encoder

    def _adapt(self, support_x, support_y, builtin_ops=False):
        if self._adapter.tuner is not None:
            return self._adapted_state(support_x, support_y, builtin_ops)
        del builtin_ops  # Prototypes and distances are builtin ops anyway.
        embeddings = self._distance_inputs(
            self.embed(support_x, training=False, example_rank=support_x.shape.rank - 2))
        prototypes = self.prototype_logits.prototypes(embeddings, support_y)  # [B, N, D]
        return tf.reshape(prototypes, [tf.shape(prototypes)[0], -1])

    def _adapted_state(self, support_x, support_y, builtin_ops):
        """With test-time adaptation: each task's adapted weights, then its prototypes."""
        if builtin_ops:
            refuse_builtin_ops(self)
        tuner = self._adapter.tuner
        static = self.jit_compile is True

        def task(support_x, support_y):
            fast, non_trainable = tuner.fit(support_x, support_y, static)
            prototypes = tuner.prototypes(fast, non_trainable, support_x, support_y, static)
            return tf.concat([tuner.flat_weights(fast),
                              tf.reshape(tf.cast(prototypes, tf.float32), [-1])], axis=0)

        return map_tasks(task, (support_x, support_y), tf.float32, tuner.task_batching)

    def _predict_adapted(self, task_state, query_x):
        tuner = self._adapter.tuner
        if tuner is not None:
            size = tuner.adapted_size

            def task(state, query_x):
                fast, non_trainable = tuner.unflatten(state[:size])
                queries = tuner.embed(fast, non_trainable, query_x)
                prototypes = tf.reshape(tf.cast(state[size:], queries.dtype),
                                        tf.stack([-1, tf.shape(queries)[-1]]))
                return self.prototype_logits.logits(prototypes[None], queries[None])[0]

            return map_tasks(task, (task_state, query_x),
                             tf.as_dtype(self.prototype_logits.compute_dtype),
                             tuner.task_batching)
        queries = self._distance_inputs(
            self.embed(query_x, training=False, example_rank=query_x.shape.rank - 2))
        prototypes = tf.reshape(tf.cast(task_state, queries.dtype),
                                tf.stack([tf.shape(task_state)[0], -1, tf.shape(queries)[-1]]))
        return self.prototype_logits.logits(prototypes, queries)

    def _distance_inputs(self, embeddings):
        """Embeddings in the dtype the prototype layer computes in (float32 under bf16)."""
        return tf.cast(embeddings, self.prototype_logits.compute_dtype)

    def serving_spec(self, example_shape=None, support_y_spec=None):
        spec = super().serving_spec(example_shape, support_y_spec)
        rank = len(spec.examples.shape) - 1

        def embed(examples):
            embeddings = self.embed(examples, training=False, example_rank=rank)
            return {"embeddings": tf.cast(embeddings, tf.float32)}

        examples = tf.TensorSpec(spec.examples.shape, spec.examples.dtype, name="examples")
        features = _known_features(self.encoder)
        size = None if self.ways is None or features is None else self.ways * features
        if size is not None and self._adapter.tuner is not None:
            size += self._adapter.tuner.adapted_size  # The adapted weights come first.
        # Prototypes need a support example of every class.
        return dataclasses.replace(spec, every_class=True, endpoints={"embed": (embed, [examples])},
                                   task_state_size=size)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "distance": self.distance,
            "ways": self.ways,
            "cosine_scale": self.cosine_scale,
            "learn_cosine_scale": self.learn_cosine_scale,
            "test_time_adaptation": None if self.test_time_adaptation is None
            else self.test_time_adaptation.get_config(),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(
            config["encoder"], custom_objects=custom_objects
        )
        return cls(**config)


def _known_features(encoder) -> int | None:
    """D, the encoder's (flattened) embedding size, when its output shape is known."""
    try:
        shape = encoder.outputs[0].shape[1:]
    except (AttributeError, TypeError, ValueError, IndexError):
        return None
    if any(size is None for size in shape):
        return None
    return int(np.prod(shape))
