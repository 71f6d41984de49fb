"""The base class of every tfmeta learner: a `keras.Model` trained on episodes."""

from typing import Any

import keras
import tensorflow as tf
from keras.src.trainers import data_adapters

from tfmeta.data.arguments import check_bool
from tfmeta.distribute.replicas import (
    first_local_replica,
    multi_worker_logs,
    sync_replica_variables,
)
from tfmeta.learners.episode import check_example_dtype, check_query_targets, unpack_episode
from tfmeta.learners.finite import (
    guard_step,
    nan_for_non_finite_inputs,
    nan_for_non_finite_queries,
    nan_for_non_finite_support,
)
from tfmeta.learners.fused_batch_norm import with_fused_batch_norm
from tfmeta.learners.labels import (
    episode_errors_as_value_errors,
    gate,
    is_classifier,
    label_checks,
    size_checks,
    static_size_checks,
)
from tfmeta.learners.padding import (
    QUERY_MASK,
    episode_inputs,
    has_labels,
    loss_arguments,
    real_mask,
)
from tfmeta.learners.serving_spec import ServingSpec, describe_serving

# Metric names that mean "per-episode, with a confidence interval" on a learner.
_EPISODIC_METRIC_ALIASES = {
    "accuracy": "accuracy",
    "acc": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
    "mse": "mse",
    "mean_squared_error": "mse",
}


def _episodic_metric(identifier: Any) -> Any:
    """Maps `"accuracy"` / `"mse"` to the episodic metrics; leaves anything else alone."""
    if not isinstance(identifier, str):
        return identifier
    kind = _EPISODIC_METRIC_ALIASES.get(identifier)
    if kind is None:
        return identifier
    from tfmeta import metrics  # Imported here: metrics is a sibling package.

    if kind == "accuracy":
        return metrics.EpisodicAccuracy(name="accuracy")
    return metrics.EpisodicMeanSquaredError(name="mse")


class MetaLearner(keras.Model):
    """A `keras.Model` whose inputs are episodes and whose outputs are query predictions.

    Subclasses implement `call(inputs, training)` (query predictions for a
    meta-batch of episodes) and, for gradient-based learners,
    `compute_meta_gradients`. The base class provides the Keras step functions
    in the order of Keras' own trainer, the episodic metrics and `export`.

    Inputs follow the episode contract of DESIGN.md: a dict with `support_x`
    `[B, S, ...]`, `support_y` `[B, S]` and `query_x` `[B, Q, ...]`; targets
    are `query_y` `[B, Q]`.

    `fuse_batch_norm` (every learner's keyword argument, default True): a
    `keras.layers.BatchNormalization` over image channels in a functional or
    Sequential model runs as `tfmeta.layers.BatchNormalization` on the same
    variables (TensorFlow's fused kernel, an exact second derivative), with a
    warning; see `tfmeta.learners.fused_batch_norm`. False keeps Keras' layer.

    In `compile`, the metric names `"accuracy"` and `"mse"` select
    `tfmeta.metrics.EpisodicAccuracy` and `EpisodicMeanSquaredError`, which
    average per episode and also log a 95% confidence interval
    (`accuracy_ci95`, `mse_ci95`).
    """

    def __init__(self, model: keras.Model, argument: str = "model", fuse_batch_norm: bool = True,
                 **kwargs):
        if "test_time_adaptation" in kwargs:  # ProtoNet and Baseline take it before here.
            raise ValueError(
                "Invalid value for argument `test_time_adaptation`: it is an option of "
                f"ProtoNet and Baseline (the prototype loss); {type(self).__name__} adapts "
                "by its own inner loop. Received: test_time_adaptation="
                f"{kwargs['test_time_adaptation']!r}"
            )
        super().__init__(**kwargs)
        self.fuse_batch_norm = check_bool("fuse_batch_norm", fuse_batch_norm)
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"Invalid value for argument `{argument}`: expected a `keras.Model`. "
                f"Received: {argument}={model!r}"
            )
        if not model.built:
            raise ValueError(
                f"Invalid value for argument `{argument}`: expected a built Keras model (build "
                "it, e.g. with `keras.Input` or by calling it once on example data). "
                f"Received: {argument}={model.name!r} with built=False"
            )
        # The wrapped model is built and learners create their own weights in
        # __init__, so a new learner is built: Keras callbacks that need a built
        # model (BackupAndRestore) and `load_weights` work before the first call.
        self.built = True

    def _with_fused_batch_norm(self, model: keras.Model) -> keras.Model:
        """`model`, or the copy of its graph on the same weights with fused image batch norm."""
        if not self.fuse_batch_norm:
            return model
        return with_fused_batch_norm(model, type(self).__name__)

    def get_config(self):
        return {**super().get_config(), "fuse_batch_norm": self.fuse_batch_norm}

    def __call__(self, *args, **kwargs):
        # Query predictions that depend on a NaN or infinite input are NaN, whatever the
        # network would make of it (see `nan_for_non_finite_inputs`).
        outputs = super().__call__(*args, **kwargs)
        inputs = args[0] if args else kwargs.get("inputs")
        return nan_for_non_finite_inputs(inputs, outputs)

    # === Keras training API ===

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        if metrics is not None:
            if isinstance(metrics, (list, tuple)):
                metrics = [_episodic_metric(m) for m in metrics]
            else:
                metrics = _episodic_metric(metrics)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a strategy, Keras builds the compiled loss and metrics from the first
        # batch merged with `strategy.reduce`, which MultiWorkerMirroredStrategy
        # rejects for the episode dict (keras-team/keras#20585). The build needs only
        # shapes: use the first local replica's part.
        if iterator is not None and getattr(self, "_distribute_strategy", None) is not None:
            for _, _, batches in iterator:
                data_batch = first_local_replica(self._distribute_strategy, next(batches))
                break
            iterator = None
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # === Saving ===

    def build_from_config(self, config):
        # A learner is built at construction (see __init__): nothing to run. Keras'
        # default would call the learner on zeros, which needs the compiled loss.
        self.built = True

    def compile_from_config(self, config):
        # Keras skips compile on load when `compile` is overridden, as it is here.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            # Create the optimizer variables so that their saved values load.
            self._build_optimizer()

    def train_step(self, data):
        x, y, sample_weight = data_adapters.data_adapter_utils.unpack_x_y_sample_weight(data)
        support_x, support_y, query_x, x = self._checked_episode(x, y, needs_targets=True)
        loss, y_pred, gradients = self.compute_meta_gradients(
            support_x, support_y, query_x, y, sample_weight
        )
        # A non-finite loss or gradient is never applied; the loss then reads NaN.
        loss, gradients = guard_step(loss, gradients)
        self._loss_tracker.update_state(
            keras.src.losses.loss.unscale_loss_for_distribution(loss),
            sample_weight=tf.shape(query_x)[0],
        )
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return multi_worker_logs(self.compute_metrics(x, y, y_pred, sample_weight=sample_weight))

    def test_step(self, data):
        x, y, sample_weight = data_adapters.data_adapter_utils.unpack_x_y_sample_weight(data)
        _, _, query_x, x = self._checked_episode(x, y, needs_targets=True)
        y_pred = self(x, training=False)
        loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                  training=False)
        self._loss_tracker.update_state(
            keras.src.losses.loss.unscale_loss_for_distribution(loss),
            sample_weight=tf.shape(query_x)[0],
        )
        return multi_worker_logs(self.compute_metrics(x, y, y_pred, sample_weight=sample_weight))

    def predict_step(self, data):
        x, _, _ = data_adapters.data_adapter_utils.unpack_x_y_sample_weight(data)
        *_, x = self._checked_episode(x, None, needs_targets=False)
        return self(x, training=False)

    def _checked_episode(self, x, y, needs_targets):
        """`(support_x, support_y, query_x, x)` after the episode checks of `labels.py`.

        The returned tensors (and `x`, rebuilt from them) run only once the run-time
        checks (non-empty sets, classification labels in `0..N-1`) have passed.
        """
        support_x, support_y, query_x = unpack_episode(x)
        check_query_targets(query_x, y)
        static_size_checks(support_x, query_x, y, needs_targets)
        checks = size_checks(support_x, query_x)
        if is_classifier(self):
            ways = self.fixed_ways()
            checks += label_checks(support_y, ways, "support_y")
            if y is not None:
                checks += label_checks(y, self._episode_ways(support_y), "query_y")
        support_x, support_y, query_x = gate(checks, support_x, support_y, query_x)
        x = {**x, "support_x": support_x, "support_y": support_y, "query_x": query_x}
        if y is not None and has_labels(y):
            x[QUERY_MASK] = real_mask(y)  # Padded queries (label -1) are not the model's.
        return support_x, support_y, query_x, x

    def fixed_ways(self):
        """The number of classes N this learner's output fixes, or None (from the labels)."""
        return None

    def _episode_ways(self, support_y):
        """The bound of the query labels: `fixed_ways()`, else `max(support_y) + 1`."""
        ways = self.fixed_ways()
        return ways if ways is not None else tf.reduce_max(support_y) + 1

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss, as the mean over the real queries of padded episodes.

        Padded queries (label -1) get the weight 0 and the real ones `entries / real
        entries`, so a mean-reduced loss equals that of the unpadded episodes
        (`tfmeta.learners.padding.loss_arguments`).
        """
        if y is not None and has_labels(y):
            y, sample_weight = loss_arguments(y, sample_weight)
        return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                    training=training)

    # The checks fail as TensorFlow errors while a step runs; callers see one line.

    def fit(self, *args, **kwargs):
        self._build_optimizer()
        with episode_errors_as_value_errors():
            return super().fit(*args, **kwargs)

    def _build_optimizer(self):
        """Creates the optimizer's variables before the train step is traced.

        Without a strategy Keras defers this to the first trace of the train step, and a
        `tf.function` whose first trace creates variables is traced a second time: the
        whole meta-gradient graph twice, about half the time to the first step of MAML.
        """
        if getattr(self, "optimizer", None) is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def evaluate(self, *args, **kwargs):
        with episode_errors_as_value_errors():
            return super().evaluate(*args, **kwargs)

    def predict(self, *args, **kwargs):
        with episode_errors_as_value_errors():
            return super().predict(*args, **kwargs)

    def train_on_batch(self, *args, **kwargs):
        self._build_optimizer()
        with episode_errors_as_value_errors():
            return super().train_on_batch(*args, **kwargs)

    def test_on_batch(self, *args, **kwargs):
        with episode_errors_as_value_errors():
            return super().test_on_batch(*args, **kwargs)

    def predict_on_batch(self, *args, **kwargs):
        with episode_errors_as_value_errors():
            return super().predict_on_batch(*args, **kwargs)

    def compute_meta_gradients(self, support_x, support_y, query_x, query_y, sample_weight):
        """Returns `(loss, query_predictions, gradients)` for `self.trainable_variables`.

        The default is the ordinary gradient of the compiled loss on the query
        predictions of `call(training=True)` (what ProtoNet needs); MAML and
        Reptile override it.
        """
        inputs = episode_inputs(support_x, support_y, query_x, query_y)
        with tf.GradientTape() as tape:
            y_pred = self(inputs, training=True)
            loss = self._compute_loss(x=inputs, y=query_y, y_pred=y_pred,
                                      sample_weight=sample_weight, training=True)
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        # Keras layers update e.g. batch norm statistics on each replica's own copy.
        sync_replica_variables(self.non_trainable_variables)
        return loss, y_pred, gradients

    # === Adapt once, predict many ===

    @property
    def example_model(self) -> keras.Model:
        """The Keras model that takes the examples (the model, or the encoder)."""
        raise NotImplementedError(f"{type(self).__name__} does not name its example model.")

    def adapt_step(self, support_x, support_y, builtin_ops: bool = False):
        """Adapts to each task of a meta-batch once: its state, float32 `[B, P]`.

        The state is what `predict_adapted_step` needs and nothing else: the adapted
        (fast) weights of MAML, Reptile, Meta-SGD, ANIL and the Baseline's episode head,
        the class prototypes of ProtoNet, flattened per task. Adaptation runs as in
        `predict` (`training=False`, `eval_inner_steps`), so
        `predict_adapted_step(adapt_step(sx, sy), qx)` equals `predict` on the episode.
        A task whose support set holds a NaN or an infinity gets a NaN state.

        Args:
            support_x: `[B, S, *example_shape]` support examples.
            support_y: `[B, S]` labels or `[B, S, *target_shape]` targets.
            builtin_ops: adapt with LiteRT's builtin ops only, no gradient op (for
                `export_litert`): prototypes need nothing more, and an inner loop on the
                output layer alone takes its closed-form gradient
                (`tfmeta.learners.closed_form_head`), equal to the tape's. A learner that
                cannot (full-network MAML, Reptile) raises a one-line ValueError.

        Returns:
            The task states, float32 `[B, P]`.

        Example:
        >>> import keras, numpy as np, tfmeta
        >>> learner = tfmeta.ProtoNet(tfmeta.backbones.mlp((4,), (8,), 8))
        >>> state = learner.adapt_step(np.zeros([1, 2, 4], "float32"), np.array([[0, 1]]))
        >>> logits = learner.predict_adapted_step(state, np.ones([1, 3, 4], "float32"))
        >>> tuple(state.shape), tuple(logits.shape)
        ((1, 16), (1, 3, 2))
        """
        support_x = tf.convert_to_tensor(support_x)
        support_y = tf.convert_to_tensor(support_y)
        check_example_dtype(support_x, self.example_model, "support_x")
        if support_y.shape.rank is not None and support_y.shape.rank < 2:
            raise ValueError(
                "Invalid `support_y`: expected shape [tasks, support] or [tasks, support, "
                f"*target_shape]. Received: shape={support_y.shape}"
            )
        static_size_checks(support_x, support_x, None, needs_targets=False)
        checks = size_checks(support_x, support_x)[:1]
        if is_classifier(self):
            checks += label_checks(support_y, self.fixed_ways(), "support_y")
        support_x, support_y = gate(checks, support_x, support_y)
        state = tf.cast(self._adapt(support_x, support_y, builtin_ops), tf.float32)
        return nan_for_non_finite_support(support_x, state)

    def predict_adapted_step(self, task_state, query_x):
        """Query predictions `[B, Q, ...]` of tasks adapted by `adapt_step`.

        Args:
            task_state: `[B, P]` float32, what `adapt_step` returned.
            query_x: `[B, Q, *example_shape]` query examples.

        Returns:
            Logits `[B, Q, N]` (classification) or predictions `[B, Q, *target_shape]`,
            NaN where the query example or the task's state is not finite.
        """
        task_state = tf.convert_to_tensor(task_state, tf.float32)
        query_x = tf.convert_to_tensor(query_x)
        check_example_dtype(query_x, self.example_model, "query_x")
        if task_state.shape.rank is not None and task_state.shape.rank != 2:
            raise ValueError(
                "Invalid `task_state`: expected the [tasks, P] states of `adapt_step`. "
                f"Received: shape={task_state.shape}"
            )
        outputs = self._predict_adapted(task_state, query_x)
        return nan_for_non_finite_queries(task_state, query_x, outputs)

    def _adapt(self, support_x, support_y, builtin_ops=False):
        """`adapt_step` of checked inputs, for subclasses: the states `[B, P]`."""
        raise NotImplementedError(f"{type(self).__name__} has no adapt step.")

    def _predict_adapted(self, task_state, query_x):
        """`predict_adapted_step` of checked inputs, for subclasses."""
        raise NotImplementedError(f"{type(self).__name__} has no adapted predict step.")

    def serving_spec(self, example_shape=None, support_y_spec=None) -> ServingSpec:
        """How this learner is served: its signatures' input specs, output key, endpoints.

        `tfmeta.export` writes the SavedModel from this description and the learner's
        `adapt_step` / `predict_adapted_step` (and `__call__` for `serving_default`).

        Args:
            example_shape: The shape of one example when the model does not know it.
            support_y_spec: A `tf.TensorSpec` of `support_y` `[None, ...]`, to override.

        Returns:
            A `tfmeta.learners.serving_spec.ServingSpec`.
        """
        return describe_serving(self, self.example_model, example_shape, support_y_spec)

    # === Deployment ===

    def export_litert(self, filepath: str, quantization: str | None = None, **kwargs) -> None:
        """Writes a LiteRT `.tflite` file that adapts on a phone: `tfmeta.export.export_litert`.

        Its signatures `adapt`, `predict_adapted` and `serving_default` take one episode
        (S and Q dynamic) and use LiteRT's builtin ops only.

        Args:
            filepath: the `.tflite` file.
            quantization: None, "float16", "dynamic_int8" or "int8" (which needs
                `representative_episodes=`).
            **kwargs: passed to `tfmeta.export.export_litert`.
        """
        from tfmeta.export import export_litert

        export_litert(self, filepath, quantization=quantization, **kwargs)

    def export(self, filepath: str, format: str = "tf_saved_model", **kwargs) -> None:  # noqa: A002
        """Writes a SavedModel that adapts to one episode inside the serving graph.

        The `serving_default` signature takes `support_x [S, ...]` float32,
        `support_y [S]` int32 and `query_x [Q, ...]` float32 (S and Q dynamic)
        and returns the query predictions `[Q, N]`. A text model (input
        `tf.string`) is served raw sentences: `support_x [S]`, `query_x [Q]`
        tf.string. The `adapt` and `predict_adapted` signatures serve
        `adapt_step` and `predict_adapted_step` for one episode (adapt once,
        predict many).

        Args:
            filepath: a folder that does not exist yet or is empty.
            format: only `"tf_saved_model"` is supported.
            **kwargs: passed to `tfmeta.export.export_learner`.

        """
        from tfmeta.export import export_learner

        if format != "tf_saved_model":
            raise ValueError(
                "Invalid value for argument `format`: expected 'tf_saved_model'. "
                f"Received: format={format!r}"
            )
        export_learner(self, filepath, **kwargs)
