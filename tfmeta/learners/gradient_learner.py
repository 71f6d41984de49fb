"""The base of MAML and Reptile: a Keras model that adapts by the inner loop on each task."""

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import check_bool, check_float, is_integer
from tfmeta.distribute.replicas import replica_mean
from tfmeta.learners.carried_inner_state import CarriedInnerState
from tfmeta.learners.closed_form_head import head_gradient_function
from tfmeta.learners.episode import unpack_episode
from tfmeta.learners.inner_loop import InnerLoop
from tfmeta.learners.inner_optimizers import inner_optimizer_from
from tfmeta.learners.learned_inner_rates import LEARNED_RATE_MODES, make_inner_rates
from tfmeta.learners.meta_learner import MetaLearner
from tfmeta.learners.padding import (
    QUERY_MASK,
    call_on_real,
    has_labels,
    real_mask,
)
from tfmeta.learners.per_step_batch_norm import PerStepBatchNorm
from tfmeta.learners.prototype_head import HEAD_INITS, PrototypeHead
from tfmeta.learners.task_map import TASK_BATCHING, map_tasks


def _check_positive_int(value: Any, argument: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not is_integer(value) or value < 1:
        expected = "a positive integer" + (" or None" if allow_none else "")
        raise ValueError(
            f"Invalid value for argument `{argument}`: expected {expected}. "
            f"Received: {argument}={value!r}"
        )


def _read(variable: keras.Variable) -> Any:
    """The variable's value for the inner loop.

    Under tf.distribute, Keras also calls the learner in a cross-replica context (to
    build it), where a mirrored variable cannot be watched by a tape: read it there.
    """
    if tf.distribute.in_cross_replica_context():
        return tf.convert_to_tensor(variable)
    return variable.value


class GradientLearner(InnerLoop, MetaLearner):
    """Base of learners that adapt a model by SGD on the support set (MAML, Reptile).

    Fast weights are tensors passed to `model.stateless_call` inside nested
    `tf.GradientTape`s: the model's variables are never assigned inside a
    step, so second-order gradients flow through the inner loop.

    Batch normalisation: the model is called with `training=True` in the inner
    loop and on the query set during meta-training, so batch norm uses the
    batch statistics of the support (inner loop) or query set, as in MAML.
    During `evaluate`/`predict` it does the same when `transductive=True`
    (MAML's protocol); with `transductive=False` it uses the moving statistics.

    Tasks of a meta-batch run vectorized (`tf.vectorized_map`) where every op
    of the model has a batched form (dense networks), else unrolled in the
    graph (convolutions); `task_batching` forces one or the other. On CPU,
    `tfmeta.distribute.use_task_parallel_threads()`, called before anything is built, runs
    the tasks in parallel with one thread per op: about 1.3x faster on 2 cores than
    TensorFlow's default of splitting every op across the cores (`tfmeta-train` does it).
    Inner steps never change the moving statistics; `train_step` updates them
    from the query pass of the adapted weights (averaged over tasks).

    Inner optimizer: plain SGD by default; `inner_optimizer` may be `"adam"` or a
    `keras.optimizers.SGD`/`Adam` instance (its settings and learning rate are used),
    applied statelessly with its state fresh for every task (Reptile's paper adapts
    with Adam, `beta_1=0`), or, with `carry_inner_optimizer_state=True`, from a state
    carried across tasks in the learner's variables (Reptile's code; see
    `tfmeta.learners.carried_inner_state`). `inner_batch_size` makes each inner step use
    a mini-batch of the support set: step `t` takes the examples at positions `t*b ... t*b + b - 1`
    (modulo the support size) of the (shuffled) support set, so successive steps cycle
    through it, as in Reptile's code.

    Memory: a second-order meta-gradient keeps every inner step's
    intermediate tensors until the backward pass, so memory grows with
    `inner_steps`. With `recompute_inner_steps=True` only each step's input
    weights are kept and the step is recomputed when the meta-gradient
    reaches it (gradient checkpointing): the same gradients for about one
    more support forward and backward pass per inner step.

    Head initialisation: `head_init="prototypes"` starts the inner loop of every task from
    the model's weights with its dense output layer set from the support set's class
    prototypes (Proto-MAML, `tfmeta.learners.prototype_head`); None starts from the model's
    own (meta-learned) head.
    """

    def __init__(
        self,
        model: keras.Model,
        inner_steps: int = 1,
        inner_learning_rate: float = 0.01,
        eval_inner_steps: int | None = None,
        adapt_layers: Sequence[str] | None = None,
        learn_inner_learning_rate: str | None = None,
        transductive: bool = True,
        recompute_inner_steps: bool = False,
        task_batching: str = "auto",
        inner_optimizer: Any = "sgd",
        inner_batch_size: int | None = None,
        per_step_batch_norm: bool = False,
        carry_inner_optimizer_state: bool = False,
        head_init: str | None = None,
        **kwargs,
    ):
        super().__init__(model, **kwargs)
        if not model.trainable_variables:
            raise ValueError(
                "Invalid value for argument `model`: the inner loop adapts trainable weights, "
                f"but the model has none. Received: model={model.name!r}"
            )
        _check_positive_int(inner_steps, "inner_steps")
        _check_positive_int(eval_inner_steps, "eval_inner_steps", allow_none=True)
        inner_learning_rate = check_float("inner_learning_rate", inner_learning_rate)
        if isinstance(adapt_layers, str) or (
            adapt_layers is not None and not all(isinstance(n, str) for n in adapt_layers)
        ):
            raise ValueError(
                "Invalid value for argument `adapt_layers`: expected a list of layer names "
                f"(e.g. ['logits']) or None. Received: adapt_layers={adapt_layers!r}"
            )
        if learn_inner_learning_rate not in LEARNED_RATE_MODES:
            raise ValueError(
                "Invalid value for argument `learn_inner_learning_rate`: expected one of "
                f"{LEARNED_RATE_MODES}. Received: learn_inner_learning_rate="
                f"{learn_inner_learning_rate!r}"
            )
        if task_batching not in TASK_BATCHING:
            raise ValueError(
                f"Invalid value for argument `task_batching`: expected one of {TASK_BATCHING}. "
                f"Received: task_batching={task_batching!r}"
            )
        _check_positive_int(inner_batch_size, "inner_batch_size", allow_none=True)
        if head_init not in HEAD_INITS:
            raise ValueError(
                f"Invalid value for argument `head_init`: expected one of {HEAD_INITS}. "
                f"Received: head_init={head_init!r}"
            )
        self._inner_rule, optimizer_rate = inner_optimizer_from(inner_optimizer)
        if optimizer_rate is not None:
            inner_learning_rate = optimizer_rate
        per_step_batch_norm = check_bool("per_step_batch_norm", per_step_batch_norm)
        if per_step_batch_norm and recompute_inner_steps:
            raise ValueError(
                "Invalid value for argument `per_step_batch_norm`: it cannot be combined with "
                "recompute_inner_steps=True. Received: per_step_batch_norm=True"
            )
        self._check_inner_options(learn_inner_learning_rate, recompute_inner_steps,
                                  inner_batch_size)
        self.carry_inner_optimizer_state = check_bool("carry_inner_optimizer_state",
                                                      carry_inner_optimizer_state)
        if self.carry_inner_optimizer_state and self._plain_sgd:
            raise ValueError(
                "Invalid value for argument `carry_inner_optimizer_state`: plain SGD has no "
                "state to carry; use an inner_optimizer with state (e.g. "
                "keras.optimizers.Adam(1e-3, beta_1=0.0), as Reptile's code does). Received: "
                "carry_inner_optimizer_state=True with inner_optimizer='sgd'"
            )
        self.model = self._with_fused_batch_norm(model)
        self.task_batching = task_batching
        self.inner_batch_size = inner_batch_size
        self.inner_steps = int(inner_steps)
        self.inner_learning_rate = inner_learning_rate
        self.eval_inner_steps = None if eval_inner_steps is None else int(eval_inner_steps)
        self.adapt_layers = list(adapt_layers) if adapt_layers is not None else None
        self.learn_inner_learning_rate = learn_inner_learning_rate
        self.transductive = check_bool("transductive", transductive)
        self.recompute_inner_steps = check_bool("recompute_inner_steps", recompute_inner_steps)
        self.per_step_batch_norm = bool(per_step_batch_norm)
        self._per_step_batch_norm = (
            PerStepBatchNorm(self, model, inner_steps) if self.per_step_batch_norm else None
        )
        self._adapted_indices = self._find_adapted_indices(model, self.adapt_layers)
        if self._per_step_batch_norm is not None:
            # MAML++ meta-learns the per-step batch-norm weights; the inner loop leaves them.
            excluded = set(self._per_step_batch_norm.trainable_indices)
            self._adapted_indices = [i for i in self._adapted_indices if i not in excluded]
        self.head_init = head_init
        self._prototype_head = (PrototypeHead(self.model, self._adapted_indices, self.adapt_layers)
                                if head_init == "prototypes" else None)
        self._inner_rates = self._make_inner_rates()
        self.carried_inner_state = None
        if self.carry_inner_optimizer_state:
            self.carried_inner_state = CarriedInnerState(
                self, self._inner_rule,
                [self.model.trainable_variables[i] for i in self._adapted_indices])

    # === Configuration helpers ===

    def _check_inner_options(self, learn_inner_learning_rate, recompute_inner_steps,
                             inner_batch_size) -> None:
        """Refuses combinations of inner-loop options that the loop cannot honour."""
        plain_sgd = self._plain_sgd
        if learn_inner_learning_rate is not None and not plain_sgd:
            raise ValueError(
                "Invalid value for argument `inner_optimizer`: learned inner learning rates "
                "(`learn_inner_learning_rate`) scale plain SGD steps. Received: "
                f"inner_optimizer={self._inner_rule.name!r} with "
                f"learn_inner_learning_rate={learn_inner_learning_rate!r}"
            )
        if recompute_inner_steps and (not plain_sgd or inner_batch_size is not None):
            raise ValueError(
                "Invalid value for argument `recompute_inner_steps`: recomputed inner steps "
                "support plain SGD on the whole support set only. Received: "
                f"recompute_inner_steps=True with inner_optimizer={self._inner_rule.name!r}, "
                f"inner_batch_size={inner_batch_size!r}"
            )

    @property
    def _plain_sgd(self) -> bool:
        return self._inner_rule.name == "sgd" and not self._inner_rule.get_config()["momentum"]

    @property
    def inner_optimizer(self) -> str | keras.optimizers.Optimizer:
        """The inner optimizer: "sgd", or the Keras optimizer whose rule the loop applies."""
        if self._plain_sgd:
            return "sgd"
        return self._inner_rule.to_keras(self.inner_learning_rate)

    @staticmethod
    def _find_adapted_indices(model: keras.Model, adapt_layers: list[str] | None) -> list[int]:
        """Indices into `model.trainable_variables` of the weights the inner loop adapts."""
        if adapt_layers is None:
            return list(range(len(model.trainable_variables)))
        position = {id(v): i for i, v in enumerate(model.trainable_variables)}
        names = [layer.name for layer in model._flatten_layers(include_self=False)]
        indices = []
        for name in adapt_layers:
            if name not in names:
                raise ValueError(
                    f"Invalid value for argument `adapt_layers`: the model has no layer {name!r}. "
                    f"Expected names among {names}. Received: adapt_layers={adapt_layers}"
                )
            layer = next(layer for layer in model._flatten_layers() if layer.name == name)
            indices.extend(position[id(v)] for v in layer.trainable_variables)
        if not indices:
            raise ValueError(
                "Invalid value for argument `adapt_layers`: the named layers have no trainable "
                f"weights. Received: adapt_layers={adapt_layers}"
            )
        return sorted(set(indices))

    def _make_inner_rates(self) -> list | None:
        """Learnable inner learning rates: Meta-SGD (per parameter) or MAML++ LSLR (per step)."""
        variables = [self.model.trainable_variables[i] for i in self._adapted_indices]
        return make_inner_rates(self, variables, self.learn_inner_learning_rate,
                                self.inner_steps, self.inner_learning_rate)

    # === Adaptation of a meta-batch ===

    def _query_predictions(self, weights, query_x, support_y, query_real, training):
        """`(predictions, updated)` of one task's query pass; padding is kept out of it."""
        def call(x):
            return self.model.stateless_call(*weights, x, training=training)

        if query_real is not None and self._calls_on_real(training):
            prediction, updated = call_on_real(call, query_x, query_real)
        else:
            prediction, updated = call(query_x)
        if has_labels(support_y):
            prediction = self._mask_absent_classes(prediction, support_y)
        return prediction, updated


    def adapt_and_predict(self, inputs, steps, first_order, training, every_step=False,
                          return_inner_state=False):
        """Adapts to each task of a meta-batch and predicts its query set.

        Args:
            inputs: the episode inputs (`support_x`, `support_y`, `query_x`).
            steps: inner steps.
            first_order: a bool, or a scalar boolean tensor (see `adapt_steps`).
            training: the `training` flag of the model calls.
            every_step: also predict the query set after every inner step (MAML++'s
                multi-step loss): predictions then have a step axis after the task axis.
            return_inner_state: also return the inner optimizer's final state (flattened,
                stacked over tasks) when the learner carries it across tasks.

        Returns:
            `(query_predictions, fast_weights, non_trainable_updates)`, each
            stacked over tasks (`[B, steps, Q, ...]` predictions with `every_step`), and
            the final inner states with `return_inner_state`.

        """
        support_x, support_y, query_x = unpack_episode(inputs, model=self.model)
        weights, task, signature = self._task_function(steps, first_order, training,
                                                       every_step, return_inner_state)
        tensors = (support_x, support_y, query_x)
        if isinstance(inputs, dict) and inputs.get(QUERY_MASK) is not None:
            tensors += (inputs[QUERY_MASK],)
        return map_tasks(lambda *tensors: task(weights, *tensors), tensors, signature,
                         self.task_batching)

    def adapt_and_differentiate(self, inputs, query_y, sample_weight, steps, first_order,
                                every_step, task_loss):
        """`adapt_and_predict` that also takes each task's meta-gradient inside the task map.

        Each task's loss `task_loss(episode, query_y, predictions, sample_weight)` (a
        meta-batch of that one task) is differentiated with respect to the learner's
        trainable variables where the task runs, so that no backward pass goes through
        the map over tasks. The caller averages the per-task losses and gradients: the
        meta-gradient of the mean loss, when the loss of a meta-batch is the mean of its
        tasks' losses (`loss_is_mean_over_tasks`).

        Measured on conv4 MAML, 5-way 1-shot, 2 CPU cores (benchmarks/RESULTS.md): at
        meta-batch 32, whose `tf.map_fn` over chunks had its backward pass through the
        loop, CPU time per task fell by a quarter and the first step came sooner (7 s
        against 11 s); unrolled at meta-batch 8, CPU time per task fell by about a tenth.

        Returns:
            `(query_predictions, fast_weights, non_trainable_updates, final_inner_state,
            losses, gradients)`, stacked over tasks: `final_inner_state` is None unless
            the learner carries it; `gradients` follow `self.trainable_variables` (zeros
            for those the loss does not use), scaled by the optimizer's loss scale.
        """
        support_x, support_y, query_x = unpack_episode(inputs, model=self.model)
        weights, task, signature = self._task_function(steps, first_order, True, every_step,
                                                       return_inner_state=True)
        variables = self.trainable_variables
        position = {id(v): i for i, v in enumerate(self.model.trainable_variables)}

        def differentiated(support_x, support_y, query_x, query_y, *sample_weight):
            # In-map copies of the meta-parameters, which the tape can watch.
            local = [tf.identity(w) for w in weights]
            with tf.GradientTape() as tape:
                tape.watch(local)
                query_real = real_mask(query_y) if has_labels(query_y) else None
                outputs = task(local, support_x, support_y, query_x, query_real)
                episode = {"support_x": support_x[None], "support_y": support_y[None],
                           "query_x": query_x[None]}
                loss = task_loss(episode, query_y[None], outputs[0][None],
                                 sample_weight[0][None] if sample_weight else None)
                scaled_loss = self.optimizer.scale_loss(loss)
            sources = [local[position[id(v)]] if id(v) in position else v for v in variables]
            gradients = tape.gradient(scaled_loss, sources)
            gradients = [tf.zeros_like(source) if gradient is None else gradient
                         for source, gradient in zip(sources, gradients)]
            return (*outputs, loss, gradients)

        signature += (tf.as_dtype(self._compile_loss.dtype), [v.dtype for v in variables])
        tensors = (support_x, support_y, query_x, query_y)
        if sample_weight is not None:
            tensors += (sample_weight,)
        *per_task, losses, gradients = map_tasks(differentiated, tensors, signature,
                                                 self.task_batching)
        predictions, fast, updated, *state = per_task  # The state only when carried.
        return predictions, fast, updated, (state[0] if state else None), losses, gradients

    def _task_function(self, steps, first_order, training, every_step, return_inner_state):
        """`(weights, task, signature)`: one task's adaptation and predictions.

        `task(weights, support_x, support_y, query_x, query_real=None)` adapts `weights` (the
        model's trainable weights as tensors, read here) to one task and returns `(predictions,
        fast_weights, non_trainable_updates)`, plus the flattened final inner state when
        `return_inner_state` and the learner carries it; `signature` is its output's
        dtypes.
        """
        weights, non_trainable, carried = self._read_weights()
        return_inner_state = return_inner_state and carried is not None

        def task(weights, support_x, support_y, query_x, query_real=None):
            step_statistics, final_state = [], []
            every = self.adapt_steps(weights, non_trainable, support_x, support_y, steps,
                                     first_order, training, statistics=step_statistics,
                                     carried=carried, final_state=final_state)
            every = every or [list(weights)]  # No step (e.g. the loss before adapting).
            kept = list(enumerate(every)) if every_step else [(len(every) - 1, every[-1])]
            predictions = []
            for step, fast in kept:
                prediction, updated = self._query_predictions(
                    self._step_weights(fast, non_trainable, step), query_x, support_y,
                    query_real, training)
                predictions.append(prediction)
            predictions = tf.stack(predictions) if every_step else predictions[0]
            updated = list(updated)
            if self._per_step_batch_norm is not None:
                # Copy k of the statistics follows inner step k's support pass.
                per_step = step_statistics[: self.inner_steps]
                updated += [tf.stack(values) for values in zip(*per_step)]
            if return_inner_state:
                return predictions, every[-1], updated, CarriedInnerState.flatten(final_state)
            return predictions, every[-1], updated

        statistics = (self._per_step_batch_norm.statistics
                      if self._per_step_batch_norm is not None else [])
        signature = (
            tf.as_dtype(self.model.compute_dtype),
            [w.dtype for w in weights],
            [v.dtype for v in non_trainable] + [v.dtype for v in statistics],
        )
        if return_inner_state:
            signature += (self.carried_inner_state.flat_dtypes(),)
        return weights, task, signature

    def _read_weights(self):
        """`(weights, non_trainable, carried)`: the model's weights as tensors for a step.

        `carried` is `(state, steps)` of the carried inner optimizer state, or None.
        """
        weights = [_read(v) for v in self.model.trainable_variables]
        non_trainable = [_read(v) for v in self.model.non_trainable_variables]
        carried = None
        if self.carried_inner_state is not None:
            carried = ([tuple(_read(part) for part in parts)
                        for parts in self.carried_inner_state.variables],
                       _read(self.carried_inner_state.steps))
        return weights, non_trainable, carried

    def call(self, inputs, training=False):
        steps = self.inner_steps
        if not training and self.eval_inner_steps is not None:
            steps = self.eval_inner_steps
        predictions, _, _ = self.adapt_and_predict(
            inputs, steps, first_order=True, training=bool(training) or self.transductive
        )
        return predictions

    # === Adapt once, predict many: the adapted weights are the task's state ===

    @property
    def example_model(self) -> keras.Model:
        return self.model

    def _eval_steps(self) -> int:
        return self.inner_steps if self.eval_inner_steps is None else self.eval_inner_steps

    def _adapt(self, support_x, support_y, builtin_ops=False):
        """The adapted weights (those the inner loop changes) of each task, flattened.

        With `builtin_ops`, the inner gradient is the head's closed form (no gradient op).
        """
        weights, non_trainable, carried = self._read_weights()
        steps = self._eval_steps()
        if builtin_ops:
            head_gradient_function(self)  # Refuses, in one line, what it cannot adapt.

        def adapt_task(support_x, support_y):
            # One gradient function a task: it keeps that support set's features.
            gradient = head_gradient_function(self) if builtin_ops else None
            every = self.adapt_steps(weights, non_trainable, support_x, support_y, steps,
                                     first_order=True, training=self.transductive,
                                     carried=carried, gradient_function=gradient)
            fast = every[-1] if every else weights
            parts = [tf.reshape(tf.cast(fast[i], tf.float32), [-1]) for i in self._adapted_indices]
            if self._prototype_head is not None:  # Which of the head's classes the task has.
                parts.append(self._prototype_head.present_classes(support_y))
            return tf.concat(parts, axis=0)

        return map_tasks(adapt_task, (support_x, support_y), tf.float32, self.task_batching)

    @property
    def task_state_size(self) -> int:
        """P, the length of a task's state: the number of weights the inner loop adapts.

        With a prototype head (Proto-MAML), also one number per head unit: whether the task
        has that class (1) or not (0: its logits are -inf).
        """
        variables = self.model.trainable_variables
        size = sum(int(np.prod(variables[i].shape)) for i in self._adapted_indices)
        if self._prototype_head is not None:
            size += self._prototype_head.head.units
        return size

    def _predict_adapted(self, task_state, query_x):
        weights, non_trainable, _ = self._read_weights()
        step = max(self._eval_steps() - 1, 0)  # The query pass after the last inner step.
        sizes = [int(np.prod(weights[i].shape)) for i in self._adapted_indices]
        expected = self.task_state_size
        if task_state.shape[-1] is not None and task_state.shape[-1] != expected:
            raise ValueError(
                f"Invalid `task_state`: {type(self).__name__} adapts {expected} weights, so "
                f"a task's state has {expected} numbers. Received: task_state.shape="
                f"{task_state.shape}"
            )

        if self._prototype_head is not None:
            sizes.append(self._prototype_head.head.units)

        def predict_task(state, query_x):
            fast = list(weights)
            parts = tf.split(state, sizes)
            for index, part in zip(self._adapted_indices, parts):
                fast[index] = tf.cast(tf.reshape(part, weights[index].shape), weights[index].dtype)
            predictions, _ = self.model.stateless_call(
                *self._step_weights(fast, non_trainable, step), query_x,
                training=self.transductive)
            if self._prototype_head is not None:  # The head's classes the task lacks.
                predictions = tf.where(parts[-1] > 0.5, predictions,
                                       tf.constant(-float("inf"), predictions.dtype))
            return predictions

        return map_tasks(predict_task, (task_state, query_x),
                         tf.as_dtype(self.model.compute_dtype), self.task_batching)

    def serving_spec(self, example_shape=None, support_y_spec=None):
        if not self.compiled:
            raise ValueError(
                f"Invalid value for argument `learner`: {type(self).__name__} adapts with its "
                "compiled loss inside the serving graph, so it must be compiled before export "
                "(`learner.compile(optimizer, loss=...)`). Received: an uncompiled "
                f"{type(self).__name__}"
            )
        spec = super().serving_spec(example_shape, support_y_spec)
        # Proto-MAML's prototypes check in the graph that each class 0..max(support_y) has a
        # support example; the head's N bounds the labels (`ways`), and fewer ways are served.
        return dataclasses.replace(spec, task_state_size=self.task_state_size)

    def _store_task_means(self, updated, inner_state=None) -> None:
        """Stores the mean over the meta-batch's tasks of their updated statistics.

        `updated` are the batch-norm statistics of each task's query pass; `inner_state`,
        when the learner carries it, the tasks' final inner optimizer state (flattened),
        whose step count then advances by the inner steps.
        """
        # The mean over tasks; under tf.distribute, over every replica's tasks, so that
        # all copies of the variables get the value one device would compute.
        variables = list(self.model.non_trainable_variables)
        if self._per_step_batch_norm is not None:
            variables += self._per_step_batch_norm.statistics
        values = list(updated)
        if inner_state is not None:
            variables += CarriedInnerState.flatten(self.carried_inner_state.variables)
            values += list(inner_state)
            self.carried_inner_state.steps.assign_add(float(self.inner_steps))
        means = replica_mean([tf.reduce_mean(value, axis=0) for value in values])
        for variable, mean in zip(variables, means):
            variable.assign(mean)

    def _episode_ways(self, support_y):
        # A prototype head may be wider than the episode, whose classes are 0..max(support_y).
        if self._prototype_head is not None:
            return tf.reduce_max(support_y) + 1
        return super()._episode_ways(support_y)

    def fixed_ways(self):
        """The head size of a classifier model (its output's last dimension), or None."""
        try:
            ways = self.model.outputs[0].shape[-1]
        except (AttributeError, TypeError, ValueError, IndexError):
            return None
        return int(ways) if ways is not None else None

    # === Config ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "model": keras.saving.serialize_keras_object(self.model),
                "inner_steps": self.inner_steps,
                "inner_learning_rate": self.inner_learning_rate,
                "eval_inner_steps": self.eval_inner_steps,
                "adapt_layers": self.adapt_layers,
                "learn_inner_learning_rate": self.learn_inner_learning_rate,
                "transductive": self.transductive,
                "recompute_inner_steps": self.recompute_inner_steps,
                "task_batching": self.task_batching,
                "inner_optimizer": _serialize_inner_optimizer(self.inner_optimizer),
                "inner_batch_size": self.inner_batch_size,
                "per_step_batch_norm": self.per_step_batch_norm,
                "carry_inner_optimizer_state": self.carry_inner_optimizer_state,
                "head_init": self.head_init,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(
            config["model"], custom_objects=custom_objects
        )
        return cls(**config)


def _serialize_inner_optimizer(optimizer: Any) -> Any:
    return optimizer if isinstance(optimizer, str) else keras.optimizers.serialize(optimizer)
