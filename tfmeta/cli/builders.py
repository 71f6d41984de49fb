"""The datasets, backbone, learner and optimizer that an `Experiment` describes."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfmeta import backbones, callbacks, data
from tfmeta.cli.experiment import Experiment
from tfmeta.learners import MAML, MetaLearner, ProtoNet, Reptile


def episodes(
    experiment: Experiment,
    split: str,
    *,
    ways: int | None,
    shots: int,
    queries: int,
    meta_batch_size: int,
    seed: int,
    data_dir: str | os.PathLike[str] | None = None,
) -> tf.data.Dataset:
    """The endless episode dataset of `experiment.dataset` for `split`.

    The dataset comes from the registry (`tfmeta.data.get_dataset`), with the experiment's
    values of the dataset's options. With `experiment.variable`, the episodes are
    Meta-Dataset's variable ones: `ways` is then the most ways ("ways_and_shots") or the
    ways ("shots"), and `shots` and `queries` are sampled.

    Args:
        experiment: Gives the dataset and its options (image size, class split, ...).
        split: "train", "validation" or "test". Sinusoid splits are independent task
            streams (different seeds), as sinusoid tasks have no classes.
        ways: Classes per episode (ignored for sinusoid); with "ways_and_shots", the most
            ways, or None for the sampler's default, `min(50, classes)`.
        shots: Support examples per class (per task for sinusoid).
        queries: Query examples per class (per task for sinusoid).
        meta_batch_size: Episodes per element.
        seed: Seed of the episode stream.
        data_dir: The data root (default: `$TFMETA_DATA_DIR`).

    Returns:
        A `tf.data.Dataset` of the episode contract.

    Example:
    >>> experiment = Experiment(dataset="sinusoid", backbone="mlp")
    >>> dataset = episodes(experiment, "test", ways=1, shots=10, queries=10,
    ...                    meta_batch_size=4, seed=0)
    >>> dataset.element_spec[1].shape
    TensorShape([4, 10, 1])

    """
    variable = {}
    if experiment.variable != "none" and not experiment.regression:
        # Meta-Dataset's variable episodes: `ways` is then the most ways (or the ways).
        variable = {"max_support": experiment.max_support,
                    "max_queries": experiment.max_queries}
        if experiment.variable == "ways_and_shots":
            variable["max_ways"], ways = ways, None
        shots = queries = None
    sources = [
        spec.episodes(split, ways=ways, shots=shots, queries=queries,
                      meta_batch_size=meta_batch_size, seed=seed, data_dir=data_dir,
                      **_options(experiment, spec), **variable)
        for spec in data.get_datasets(experiment.dataset)
    ]
    if len(sources) == 1:
        return sources[0]
    # --dataset=a,b: one source per episode, uniformly (Meta-Dataset), in one example shape.
    side = example_shape(experiment)[0]
    return data.mix(sources, seed=seed, image_size=side)


def _options(experiment: Experiment, spec: data.DatasetSpec) -> dict[str, Any]:
    return {name: getattr(experiment, name) for name in spec.options}


def class_splits(experiment: Experiment, data_dir: str | os.PathLike[str] | None = None
                 ) -> Mapping[str, Sequence[str]] | None:
    """The dataset's `{split: class names}` when its split is derived from the data, else None.

    Lists the data without reading an example (see `DatasetSpec.class_splits`).
    """
    specs = data.get_datasets(experiment.dataset)
    if len(specs) != 1 or specs[0].class_splits is None:  # Mixed sources: not checked.
        return None
    return specs[0].class_splits(data_dir, **dataset_options(experiment))


def dataset_options(experiment: Experiment) -> dict[str, Any]:
    """The experiment's values of its datasets' options (e.g. `image_size`, `scheme`)."""
    options = {}
    for spec in data.get_datasets(experiment.dataset):
        options.update(_options(experiment, spec))
    return options


def example_shape(experiment: Experiment) -> tuple[int, ...]:
    """The shape of one example of the experiment's dataset(s), e.g. `(28, 28, 1)`.

    Mixed image datasets share the largest side and channels (greyscale becomes RGB).
    """
    shapes = [tuple(spec.example_shape(_options(experiment, spec)))
              for spec in data.get_datasets(experiment.dataset)]
    if len(shapes) == 1 or len(shapes[0]) != 3:
        return shapes[0]
    side = max(max(shape[:2]) for shape in shapes)
    return (side, side, max(shape[2] for shape in shapes))


def dynamic_meta_batch(dataset: tf.data.Dataset, meta_batch_size: int) -> tf.data.Dataset:
    """Re-batches episodes into meta-batches of an unknown (dynamic) size.

    Evaluation adapts with many inner steps; with a dynamic meta-batch the
    gradient learners map one adaptation over the tasks (`tf.map_fn`) instead
    of tracing one copy per task, which traces in seconds instead of minutes.
    """
    return dataset.unbatch().batch(meta_batch_size).prefetch(tf.data.AUTOTUNE)


def backbone(experiment: Experiment,
             data_dir: str | os.PathLike[str] | None = None) -> keras.Model:
    """The network the learner adapts (MAML, Reptile) or embeds with (ProtoNet).

    Classification models end in a `ways`-unit logits layer, except for ProtoNet,
    whose encoder ends in the embedding (conv4's flat features, ResNet-12's 640
    average-pooled features, or the MLP's last hidden width). The input shape, channels
    included, is the dataset's `example_shape`.
    A text backbone's vocabulary is adapted to the sentences of the dataset's training
    split (read from `data_dir`), never to the test classes'.

    Example:
    >>> backbone(Experiment(dataset="sinusoid", backbone="mlp")).output_shape
    (None, 1)

    """
    input_shape = example_shape(experiment)
    if experiment.regression:
        spec = data.get_datasets(experiment.dataset)[0]
        target_shape = spec.targets(dataset_options(experiment))
        activation = None if experiment.output_activation == "linear" else (
            experiment.output_activation)
        return backbones.mlp(input_shape=input_shape, hidden_units=experiment.hidden_units,
                             output_units=int(np.prod(target_shape)),
                             output_activation=activation)
    image_shape = input_shape
    head = None if experiment.learner == "protonet" else experiment.ways
    if experiment.backbone == "bag_of_ngrams":
        spec = data.get_datasets(experiment.dataset)[0]
        sentences = spec.texts("train", data_dir, **dataset_options(experiment))
        return backbones.bag_of_ngrams(sentences, embedding_dim=experiment.embedding_dim,
                                       num_classes=head, seed=experiment.seed,
                                       hash_buckets=experiment.hash_buckets or None)
    if experiment.backbone == "conv4":
        return backbones.conv4(image_shape, filters=experiment.filters, num_classes=head,
                               kernel_initializer=experiment.kernel_initializer)
    if experiment.backbone == "resnet12":
        return backbones.resnet12(image_shape, num_classes=head,
                                  kernel_initializer=experiment.kernel_initializer)
    if head is None:
        *hidden, embedding = experiment.hidden_units
        return backbones.mlp(image_shape, hidden_units=hidden, output_units=embedding)
    return backbones.mlp(image_shape, hidden_units=experiment.hidden_units, output_units=head)


def learner(experiment: Experiment,
            data_dir: str | os.PathLike[str] | None = None) -> MetaLearner:
    """A new, uncompiled learner with the experiment's settings and a fresh backbone.

    `data_dir` is where a text backbone reads the training sentences.

    Example:
    >>> type(learner(Experiment(dataset="sinusoid", backbone="mlp"))).__name__
    'MAML'

    """
    model = backbone(experiment, data_dir)
    if experiment.learner == "protonet":
        # XLA needs a static number of ways; otherwise it comes from each episode's labels,
        # so a ProtoNet trained 60-way evaluates 5-way.
        return ProtoNet(model, ways=experiment.ways if experiment.jit_compile else None,
                        distance=experiment.distance,
                        learn_cosine_scale=experiment.distance == "cosine")
    inner = {
        "inner_steps": experiment.inner_steps,
        "inner_learning_rate": experiment.inner_learning_rate,
        "eval_inner_steps": experiment.eval_inner_steps,
        "transductive": experiment.transductive,
        "inner_optimizer": inner_optimizer(experiment),
        "inner_batch_size": experiment.inner_batch_size,
        "carry_inner_optimizer_state": experiment.carry_inner_optimizer_state,
    }
    if experiment.learner == "reptile":
        return Reptile(model, **inner)
    return MAML(
        model, first_order=experiment.first_order,
        multi_step_loss_steps=experiment.multi_step_loss_steps,
        first_order_steps=experiment.first_order_steps,
        per_step_batch_norm=experiment.per_step_batch_norm,
        learn_inner_learning_rate=(None if experiment.learn_inner_learning_rate == "none"
                                   else experiment.learn_inner_learning_rate),
        adapt_layers=list(experiment.adapt_layers) or None,
        head_init=None if experiment.head_init == "none" else experiment.head_init,
        **inner,
    )


def inner_optimizer(experiment: Experiment) -> str | keras.optimizers.Optimizer:
    """The inner loop's optimizer: "sgd", or Adam with the experiment's rate and beta_1."""
    if experiment.inner_optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=experiment.inner_learning_rate,
                                     beta_1=experiment.inner_adam_beta_1)
    return "sgd"


def learning_rate(experiment: Experiment) -> Any:
    """The meta-optimizer's learning rate: a float or a Keras schedule.

    "step" multiplies it by `lr_decay_rate` every `lr_decay_episodes` training
    episodes (ProtoNet halves it every 2,000); "linear" anneals it to
    `final_learning_rate` over `train_steps` (Reptile's meta step size); "cosine" anneals
    it along a half cosine to `final_learning_rate` at `train_steps` (MAML++).
    """
    if experiment.lr_decay == "step":
        return callbacks.EpisodeStepDecay(
            experiment.learning_rate,
            decay_episodes=experiment.lr_decay_episodes,
            decay_rate=experiment.lr_decay_rate,
            meta_batch_size=experiment.meta_batch_size,
        )
    if experiment.lr_decay == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            experiment.learning_rate,
            decay_steps=experiment.train_steps,
            alpha=experiment.final_learning_rate / experiment.learning_rate,
        )
    if experiment.lr_decay == "linear":
        return keras.optimizers.schedules.PolynomialDecay(
            experiment.learning_rate,
            decay_steps=experiment.train_steps,
            end_learning_rate=experiment.final_learning_rate,
            power=1.0,
        )
    return experiment.learning_rate


def optimizer(experiment: Experiment) -> keras.optimizers.Optimizer:
    """The meta-optimizer (`keras.optimizers.Adam` or `SGD`)."""
    rate = learning_rate(experiment)
    if experiment.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate)
    return keras.optimizers.Adam(learning_rate=rate)


def compile_learner(
    meta_learner: MetaLearner,
    experiment: Experiment,
    meta_optimizer: keras.optimizers.Optimizer | str = "sgd",
) -> MetaLearner:
    """Compiles with the experiment's loss and episodic metric, and returns the learner.

    The loss matters beyond training: MAML and Reptile adapt with the compiled
    loss, so a learner must be compiled before it evaluates or is exported.
    """
    if experiment.regression:
        loss, metric = "mse", "mse"
    else:
        loss, metric = keras.losses.SparseCategoricalCrossentropy(from_logits=True), "accuracy"
    meta_learner.compile(optimizer=meta_optimizer, loss=loss, metrics=[metric],
                         jit_compile=experiment.jit_compile)
    return meta_learner
