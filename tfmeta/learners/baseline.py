"""Pre-training baselines: Baseline and Baseline++ (Chen et al., 2019), Meta-Baseline's stage 1."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import tensorflow as tf
from keras.src.trainers import data_adapters

from tfmeta.data.arguments import check_float, check_int_in_range, check_seed
from tfmeta.layers.cosine_classifier import CosineClassifier
from tfmeta.layers.prototype_logits import PrototypeLogits
from tfmeta.learners.episode import embed_examples, unpack_episode
from tfmeta.learners.finite import guard_step
from tfmeta.learners.gradient_learner import GradientLearner
from tfmeta.learners.inner_optimizers import inner_optimizer_from
from tfmeta.learners.meta_learner import MetaLearner
from tfmeta.learners.padding import QUERY_MASK, real_mask
from tfmeta.learners.protonet import ProtoNet
from tfmeta.learners.prototype_fine_tuner import (
    PrototypeFineTuner,
    Untracked,
    refuse_builtin_ops,
)
from tfmeta.learners.task_map import map_tasks
from tfmeta.learners.test_time_adaptation import as_test_time_adaptation

HEADS = ("linear", "cosine")


@keras.saving.register_keras_serializable(package="tfmeta")
class Baseline(MetaLearner):
    """An encoder pre-trained as an ordinary classifier, evaluated on episodes.

    Chen et al. (2019, "A Closer Look at Few-shot Classification") show that this simple
    recipe rivals meta-learning: `fit` trains `encoder` plus a classifier over all
    `num_classes` training classes on non-episodic `(x, y)` batches
    (`tfmeta.data.batches`); `evaluate`/`predict`/`export` take episodes, embed them with the
    frozen encoder and fit a fresh `ways`-way head on each support set, by the inner loop
    of `tfmeta.GradientLearner` (`fine_tune_steps` steps of `fine_tune_optimizer`, on
    mini-batches of `fine_tune_batch_size` support embeddings), starting every episode from
    the same untrained head. `head="linear"` is Baseline, `head="cosine"` Baseline++
    (`tfmeta.layers.CosineClassifier`, for training and episodes alike). Meta-Baseline
    (Chen et al., 2021) evaluates the pre-trained encoder by cosine prototypes instead:
    `to_protonet()` gives that ProtoNet, ready to evaluate or to meta-train further.

    Test-time adaptation to a new domain (`test_time_adaptation`, a
    `tfmeta.TestTimeAdaptation`): before the episode head is fitted, the encoder
    ("finetune") or task-specific adapters beside its frozen convolutions ("tsa") are
    fitted to the support set by the prototype loss (cosine prototypes for Baseline++,
    squared Euclidean for Baseline), and the head is fitted on the adapted features.
    Pre-training is unchanged. Meta-Baseline takes it through
    `to_protonet(test_time_adaptation=...)`.

    Args:
        encoder: A built Keras model mapping examples to flat features `[batch, D]`.
        num_classes: Classes of the pre-training split (the classifier's size).
        head: "linear" (Baseline) or "cosine" (Baseline++).
        ways: Classes per evaluation episode (the size of the episode head).
        fine_tune_steps: Optimizer steps of the episode head on the support set.
        fine_tune_optimizer: "sgd", "adam" or a Keras SGD/Adam instance (see
            `GradientLearner`'s `inner_optimizer`); Chen et al. use SGD with momentum 0.9
            and learning rate 0.01 (the default).
        fine_tune_batch_size: Support embeddings per step (Chen et al.: 4), or None for all.
        cosine_scale: Scale of the cosine heads.
        seed: Seed of the episode head's (fixed) initial weights.
        test_time_adaptation: None, "finetune", "tsa" or a `tfmeta.TestTimeAdaptation`
            (see above).
        **kwargs: Arguments of `keras.Model` (e.g. `name`).

    Example:
    >>> import keras, tfmeta
    >>> encoder = tfmeta.backbones.mlp((4,), hidden_units=(8,), output_units=8)
    >>> learner = tfmeta.Baseline(encoder, num_classes=10, head="cosine", ways=3,
    ...                           fine_tune_steps=5)
    >>> learner.compile(optimizer="adam",
    ...     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    ...     metrics=["accuracy"])
    >>> import numpy as np
    >>> history = learner.fit(np.random.rand(32, 4), np.random.randint(0, 10, 32), verbose=0)
    """

    def __init__(
        self,
        encoder: keras.Model,
        num_classes: int,
        head: str = "linear",
        ways: int = 5,
        fine_tune_steps: int = 100,
        fine_tune_optimizer: Any = None,
        fine_tune_batch_size: int | None = 4,
        cosine_scale: float = 10.0,
        seed: int = 0,
        test_time_adaptation: Any = None,
        **kwargs,
    ):
        super().__init__(encoder, argument="encoder", **kwargs)
        for name, value in (("num_classes", num_classes), ("ways", ways),
                            ("fine_tune_steps", fine_tune_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Invalid value for argument `{name}`: expected a positive "
                                 f"integer. Received: {name}={value!r}")
        if head not in HEADS:
            raise ValueError(f"Invalid value for argument `head`: expected one of {HEADS}. "
                             f"Received: head={head!r}")
        if len(encoder.outputs[0].shape) != 2:
            raise ValueError(
                "Invalid value for argument `encoder`: expected flat features [batch, D] (e.g. "
                "tfmeta.backbones.conv4 without num_classes). Received: output shape "
                f"{tuple(encoder.outputs[0].shape)}"
            )
        if fine_tune_batch_size is not None:
            check_int_in_range("fine_tune_batch_size", fine_tune_batch_size)
        cosine_scale = check_float("cosine_scale", cosine_scale)
        seed = check_seed(seed)
        if fine_tune_optimizer is None:
            fine_tune_optimizer = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
        try:
            inner_optimizer_from(fine_tune_optimizer)
        except ValueError as error:
            # The episode head's optimizer is the inner loop's: name this argument.
            raise ValueError(str(error).replace("inner_optimizer", "fine_tune_optimizer")) from None
        self.encoder = self._with_fused_batch_norm(encoder)
        self.num_classes = num_classes
        self.head = head
        self.ways = ways
        self.fine_tune_steps = fine_tune_steps
        self.fine_tune_batch_size = fine_tune_batch_size
        self.cosine_scale = float(cosine_scale)
        self.seed = int(seed)
        features = int(encoder.outputs[0].shape[-1])
        self.classifier = self._head(num_classes, "classifier")
        self.classifier.build((None, features))
        # The episode head: its weights are never trained, so every episode starts from them.
        episode_head = keras.Sequential([keras.Input((features,)),
                                         self._head(ways, "episode_head", seed=self.seed)])
        self._fine_tuner = GradientLearner(
            episode_head, inner_steps=fine_tune_steps, inner_optimizer=fine_tune_optimizer,
            inner_batch_size=fine_tune_batch_size, transductive=False)
        self._fine_tuner.compile(
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        self.test_time_adaptation = as_test_time_adaptation(test_time_adaptation, "Baseline")
        tuner = None
        if self.test_time_adaptation is not None:
            # The support loss of the adaptation: prototypes in the head's geometry.
            prototype_logits = PrototypeLogits(
                ways=ways, distance="cosine" if head == "cosine" else "squared_euclidean",
                scale=self.cosine_scale, name="adaptation_prototypes")
            tuner = PrototypeFineTuner(self.encoder, prototype_logits, self.test_time_adaptation)
        self._adapter = Untracked(tuner)

    def _head(self, units: int, name: str, seed: int | None = None) -> keras.layers.Layer:
        initializer = keras.initializers.GlorotUniform(seed=seed)
        if self.head == "cosine":
            return CosineClassifier(units, scale=self.cosine_scale,
                                    kernel_initializer=initializer, name=name)
        return keras.layers.Dense(units, kernel_initializer=initializer, name=name)

    def fixed_ways(self):
        """`ways`: the episode head's size."""
        return self.ways

    @property
    def fine_tune_optimizer(self):
        """The episode head's optimizer (see `GradientLearner.inner_optimizer`)."""
        return self._fine_tuner.inner_optimizer

    @property
    def pretrained_variables(self) -> list:
        """What `fit` trains: the encoder's and the classifier's weights."""
        return self.encoder.trainable_variables + self.classifier.trainable_variables

    # === Pre-training: an ordinary classifier ===

    def train_step(self, data):
        x, y, sample_weight = data_adapters.data_adapter_utils.unpack_x_y_sample_weight(data)
        if isinstance(x, dict):
            raise ValueError(
                "Baseline pre-trains on (x, y) batches of a split's classes "
                "(tfmeta.data.batches), not on episodes; evaluate it on episodes."
            )
        variables = self.pretrained_variables
        with tf.GradientTape() as tape:
            logits = self.classify(x, training=True)
            loss = self._compute_loss(x=x, y=y, y_pred=logits, sample_weight=sample_weight,
                                      training=True)
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, variables)
        # As every learner: a non-finite loss or gradient is never applied; the loss reads NaN.
        loss, gradients = guard_step(loss, gradients)
        self.optimizer.apply_gradients(zip(gradients, variables))
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(y)[0])
        # This batch's accuracy (the compiled metrics are episodic: they serve `evaluate`).
        correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32),
                           tf.cast(tf.reshape(y, [-1]), tf.int32))
        return {"loss": self._loss_tracker.result(),
                "batch_accuracy": tf.reduce_mean(tf.cast(correct, tf.float32))}

    def get_metrics_result(self):
        # The compiled (episodic) metrics are built by the first episodes `evaluate` sees;
        # until then, pre-training reports its own logs.
        compiled = getattr(self, "_compile_metrics", None)
        if compiled is not None and not compiled.built:
            return {"loss": self._loss_tracker.result()}
        return super().get_metrics_result()

    def classify(self, x, training=False):
        """Logits `[batch, num_classes]` of the pre-training classifier."""
        return self.classifier(self.encoder(x, training=training))

    # === Episodes: a fresh head fitted on each support set ===

    def call(self, inputs, training=False):
        if not isinstance(inputs, dict):
            return self.classify(inputs, training=training)
        support_x, support_y, query_x = unpack_episode(inputs)
        support_features, query_features, _ = self._episode_features(
            support_x, support_y, query_x, inputs.get(QUERY_MASK))
        episode = {"support_x": support_features, "support_y": support_y,
                   "query_x": query_features}
        predictions, _, _ = self._fine_tuner.adapt_and_predict(
            episode, self.fine_tune_steps, first_order=True, training=False)
        return predictions

    # === Adapt once, predict many: the fitted episode head is the task's state ===

    @property
    def example_model(self) -> keras.Model:
        return self.encoder

    def _adapt(self, support_x, support_y, builtin_ops=False):
        if self._adapter.tuner is None:
            return self._fine_tuner.adapt_step(self._embed(support_x), support_y, builtin_ops)
        if builtin_ops:
            refuse_builtin_ops(self)
        features, _, adapted = self._episode_features(support_x, support_y)
        head = self._fine_tuner.adapt_step(features, support_y)
        return tf.concat([adapted, head], axis=-1)  # The adapted encoder, then the head.

    def _predict_adapted(self, task_state, query_x):
        tuner = self._adapter.tuner
        if tuner is None:
            return self._fine_tuner.predict_adapted_step(task_state, self._embed(query_x))
        size = tuner.adapted_size

        def features(state, query_x):
            fast, non_trainable = tuner.unflatten(state)
            return tuner.embed(fast, non_trainable, query_x)

        query_features = map_tasks(features, (task_state[:, :size], query_x),
                                   tf.as_dtype(self.encoder.compute_dtype), tuner.task_batching)
        return self._fine_tuner.predict_adapted_step(task_state[:, size:], query_features)

    def serving_spec(self, example_shape=None, support_y_spec=None):
        spec = super().serving_spec(example_shape, support_y_spec)
        size = self._fine_tuner.task_state_size
        if self._adapter.tuner is not None:
            size += self._adapter.tuner.adapted_size
        return dataclasses.replace(spec, task_state_size=size)

    def _episode_features(self, support_x, support_y, query_x=None, query_real=None):
        """`(support, query, adapted)` features `[B, M, D]` of an episode's examples.

        Without test-time adaptation, the frozen encoder's (and `adapted` None); with it,
        each task's adapted encoder's, and `adapted` its adapted weights `[B, P]`.
        """
        tuner = self._adapter.tuner
        if tuner is None:
            return self._embed(support_x), None if query_x is None else self._embed(query_x), None
        static = self.jit_compile is True  # XLA: padding stays in the calls, at weight 0.
        dtype = tf.as_dtype(self.encoder.compute_dtype)
        if query_x is None:
            query_x = support_x[:, :1]  # Not used: keeps one task function.
            query_real = None
        if query_real is None:
            query_real = tf.ones(tf.shape(query_x)[:2], tf.bool)

        def task(support_x, support_y, query_x, query_real):
            fast, non_trainable = tuner.fit(support_x, support_y, static)
            support = tuner.embed(fast, non_trainable, support_x,
                                  None if static else real_mask(support_y))
            query = tuner.embed(fast, non_trainable, query_x, None if static else query_real)
            return tf.cast(support, dtype), tf.cast(query, dtype), tuner.flat_weights(fast)

        support, query, adapted = map_tasks(
            task, (support_x, support_y, query_x, query_real), (dtype, dtype, tf.float32),
            tuner.task_batching)
        return support, query, adapted

    def _embed(self, x):
        """Frozen encoder features of `[B, M, ...]` examples: `[B, M, D]`."""
        return tf.stop_gradient(embed_examples(self.encoder, x, training=False))

    def to_protonet(self, distance: str = "cosine", **kwargs) -> ProtoNet:
        """Meta-Baseline (Chen et al., 2021): a ProtoNet on this pre-trained encoder.

        Its logits are the scaled cosine similarities to the support prototypes (with
        `learn_cosine_scale=True` by default, as Meta-Baseline learns the temperature when
        it meta-trains further). The encoder is shared, not copied.
        """
        kwargs.setdefault("learn_cosine_scale", distance == "cosine")
        kwargs.setdefault("fuse_batch_norm", self.fuse_batch_norm)
        return ProtoNet(self.encoder, distance=distance, **kwargs)

    def with_test_time_adaptation(self, test_time_adaptation) -> Baseline:
        """This Baseline on the same encoder and classifier, adapting at test time.

        Args:
            test_time_adaptation: None, "finetune", "tsa" or a `tfmeta.TestTimeAdaptation`.

        Returns:
            A new, uncompiled `Baseline` (its episode head starts from the same weights).
        """
        config = self.get_config()
        config.pop("encoder")
        config["test_time_adaptation"] = test_time_adaptation
        config["fine_tune_optimizer"] = self.fine_tune_optimizer
        learner = Baseline(self.encoder, **config)
        learner.classifier.set_weights(self.classifier.get_weights())
        return learner

    def compute_meta_gradients(self, *args, **kwargs):
        raise ValueError("Baseline pre-trains on (x, y) batches; it has no episodic training.")

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "num_classes": self.num_classes,
            "head": self.head,
            "ways": self.ways,
            "fine_tune_steps": self.fine_tune_steps,
            "fine_tune_optimizer": _serialize(self.fine_tune_optimizer),
            "fine_tune_batch_size": self.fine_tune_batch_size,
            "cosine_scale": self.cosine_scale,
            "seed": self.seed,
            "test_time_adaptation": None if self.test_time_adaptation is None
            else self.test_time_adaptation.get_config(),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(
            config["encoder"], custom_objects=custom_objects)
        return cls(**config)


def _serialize(optimizer: Any) -> Any:
    return optimizer if isinstance(optimizer, str) else keras.optimizers.serialize(optimizer)
