"""SavedModel export of a learner: few-shot adaptation inside the serving graph."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfmeta.export.serving_checks import check_served_episode
from tfmeta.learners.episode import model_input_dtype
from tfmeta.learners.finite import non_finite_weights
from tfmeta.learners.gradient_learner import GradientLearner
from tfmeta.learners.labels import is_classifier, is_regression
from tfmeta.learners.meta_learner import MetaLearner
from tfmeta.learners.protonet import ProtoNet


def export_learner(
    learner: MetaLearner,
    filepath: str | os.PathLike,
    *,
    overwrite: bool = False,
    example_shape: Sequence[int | None] | None = None,
    support_y_spec: tf.TensorSpec | None = None,
    verbose: bool = False,
) -> None:
    """Writes a SavedModel that adapts to one episode and predicts its queries.

    The SavedModel's `serving_default` signature (also named `serve`) takes
    one episode and returns its query predictions:

    | input | shape | dtype |
    | --- | --- | --- |
    | `support_x` | `[S, *example_shape]` | float32 (tf.string for text) |
    | `support_y` | `[S]` (classification) or `[S, *target_shape]` (regression) | int32 / float32 |
    | `query_x` | `[Q, *example_shape]` | float32 (tf.string for text) |

    S and Q are dynamic; the example shape and dtype are the model's input's: a model
    whose input is `tf.string` (e.g. one starting with `keras.layers.TextVectorization`)
    is served raw sentences, `support_x [S]` and `query_x [Q]` tf.string. The
    output is `{"logits": [Q, N]}` for classification and
    `{"predictions": [Q, *target_shape]}` for regression, float32. MAML and
    Reptile take `eval_inner_steps` (default `inner_steps`) SGD steps on the
    support set inside the graph, exactly as `learner.predict` does on a
    meta-batch of one episode; ProtoNet computes prototypes. N is the head
    size for MAML/Reptile, `ways` for `ProtoNet(ways=...)`, and otherwise
    `max(support_y) + 1` at run time.

    A badly formed episode (support sizes that differ, labels outside
    `0..N-1`, for ProtoNet a class without support example) fails at serving
    time with an `InvalidArgumentError` whose message starts with
    `Invalid episode:`.

    ProtoNet exports also get an `embed` signature: `examples [E, ...]` ->
    `{"embeddings": [E, D]}`.

    Classification or regression: MAML and Reptile whose compiled loss is a
    regression loss (`"mse"`, `"mae"`, `MeanSquaredError()`, Huber, ...)
    are exported as regressors, with float32 `support_y` of shape
    `[S, *model_output_shape]`; every other learner as a classifier with
    int32 labels. `support_y_spec` overrides this.

    Args:
        learner: a MAML, Reptile or ProtoNet learner (trained or not). MAML
            and Reptile must be compiled: they adapt with the compiled loss.
        filepath: the SavedModel folder. It must not exist or be empty, or,
            with `overwrite=True`, hold a SavedModel (which is replaced). The
            SavedModel is written beside it and renamed into place, so a
            failed export leaves nothing behind.
        overwrite: whether to replace an existing SavedModel at `filepath`.
        example_shape: the shape of one example, for models whose input shape
            is unknown (e.g. subclassed models); defaults to the model's.
        support_y_spec: a `tf.TensorSpec` for `support_y` `[S, ...]` (its
            first dimension must be None); defaults as described above.
        verbose: whether to print the exported endpoints.

    Raises:
        ValueError: for a learner that is not a `MetaLearner`, a MAML/Reptile
            learner that is not compiled or a learner with NaN or infinite
            weights, an unknown example shape, or a `filepath` that is empty
            or in the way.
        OSError: when the folder cannot be written.

    Example:
    >>> import keras, numpy as np, tensorflow as tf, tfmeta
    >>> learner = tfmeta.ProtoNet(tfmeta.backbones.mlp((4,), (8,), 8))
    >>> export_learner(learner, "/tmp/tfmeta_export_example", overwrite=True)
    >>> serving = tf.saved_model.load("/tmp/tfmeta_export_example")
    >>> logits = serving.signatures["serving_default"](
    ...     support_x=tf.zeros([2, 4]), support_y=tf.constant([0, 1]),
    ...     query_x=tf.ones([3, 4]))["logits"]
    >>> logits.shape
    TensorShape([3, 2])

    """
    _check_learner(learner)
    filepath = os.fspath(filepath)
    _check_filepath(filepath, overwrite)
    model = _wrapped_model(learner)
    example_shape = _example_shape(model, example_shape)
    classification, support_y_spec = _support_y_spec(learner, model, support_y_spec)
    output_key = "logits" if classification else "predictions"
    ways = _known_ways(learner, model) if classification else None
    every_class = isinstance(learner, ProtoNet)

    examples_spec = [None, *example_shape]
    examples_dtype = _example_dtype(model)
    serve_signature = [
        tf.TensorSpec(examples_spec, examples_dtype, name="support_x"),
        support_y_spec,
        tf.TensorSpec(examples_spec, examples_dtype, name="query_x"),
    ]

    def serve(support_x, support_y, query_x):
        support_x, support_y, query_x = check_served_episode(
            support_x, support_y, query_x, classification, ways=ways, every_class=every_class
        )
        # A meta-batch of one episode: the static task dimension lets MAML and
        # Reptile unroll their task loop while S and Q stay dynamic.
        episode = {"support_x": support_x[None], "support_y": support_y[None],
                   "query_x": query_x[None]}
        outputs = learner(episode, training=False)[0]
        return {output_key: tf.cast(outputs, tf.float32)}

    archive = keras.export.ExportArchive()
    serve_function = archive.add_endpoint("serve", serve, input_signature=serve_signature)
    if isinstance(learner, ProtoNet):

        def embed(examples):
            embeddings = learner.embed(examples, training=False, example_rank=len(example_shape))
            return {"embeddings": tf.cast(embeddings, tf.float32)}

        archive.add_endpoint(
            "embed", embed, input_signature=[tf.TensorSpec(examples_spec, examples_dtype,
                                                           name="examples")]
        )
    # Tracing builds a learner that was never called; then its variables can be
    # tracked, so the reloaded object exposes `variables` and `trainable_variables`.
    serve_function.get_concrete_function()
    archive.track(learner if learner.built else model)
    _write_atomically(archive, filepath, verbose)


# === Argument checks ===


def _check_learner(learner: Any) -> None:
    if not isinstance(learner, MetaLearner):
        raise ValueError(
            "Invalid value for argument `learner`: expected a tfmeta learner (MAML, Reptile or "
            f"ProtoNet). Received: learner={learner!r}"
        )
    if isinstance(learner, GradientLearner) and not learner.compiled:
        raise ValueError(
            f"Invalid value for argument `learner`: {type(learner).__name__} adapts with its "
            "compiled loss inside the serving graph, so it must be compiled before export "
            "(`learner.compile(optimizer, loss=...)`). Received: an uncompiled "
            f"{type(learner).__name__}"
        )
    bad = non_finite_weights(learner)
    if bad:
        raise ValueError(
            "Invalid value for argument `learner`: its weights hold NaN or infinite values "
            f"({len(bad)} of {len(learner.weights)} weights, e.g. {bad[0]}), so every answer "
            f"of the SavedModel would be meaningless. Received: {type(learner).__name__} with "
            "non-finite weights"
        )


def _write_atomically(archive: keras.export.ExportArchive, filepath: str, verbose: bool) -> None:
    """Writes the SavedModel into a new sibling folder, then renames it onto `filepath`."""
    parent = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(filepath)}.partial-")
    try:
        archive.write_out(temporary, verbose=verbose)
        os.chmod(temporary, 0o755)  # mkdtemp's folders are private (0o700).
        if os.path.isdir(filepath) and os.listdir(filepath):
            shutil.rmtree(filepath)  # a SavedModel, and overwrite=True (checked before)
        os.replace(temporary, filepath)  # onto a missing or empty folder
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _check_filepath(filepath: str, overwrite: bool) -> None:
    if not filepath.strip():
        raise ValueError(
            "Invalid value for argument `filepath`: expected the path of a folder for the "
            f"SavedModel (an empty path would write into the current folder). Received: "
            f"filepath={filepath!r}"
        )
    if os.path.exists(filepath) and not os.path.isdir(filepath):
        raise ValueError(
            "Invalid value for argument `filepath`: expected a folder for the SavedModel, "
            f"but it is an existing file. Received: filepath={filepath!r}"
        )
    if not os.path.isdir(filepath) or not os.listdir(filepath):
        return
    if not overwrite:
        raise ValueError(
            "Invalid value for argument `filepath`: expected a folder that does not exist or is "
            f"empty (or pass overwrite=True to replace a SavedModel). Received: "
            f"filepath={filepath!r}, which is not empty"
        )
    if not os.path.exists(os.path.join(filepath, "saved_model.pb")):
        raise ValueError(
            "Invalid value for argument `filepath`: overwrite=True only replaces a SavedModel "
            "folder (with a saved_model.pb), and this folder holds other files. Received: "
            f"filepath={filepath!r}"
        )


# === What the learner tells about its episodes ===


def _wrapped_model(learner: MetaLearner) -> keras.Model:
    """The learner's model (MAML, Reptile) or encoder (ProtoNet)."""
    model = getattr(learner, "model", None)
    if model is None:
        model = getattr(learner, "encoder", None)
    if not isinstance(model, keras.Model):
        raise ValueError(
            "Invalid value for argument `learner`: expected a learner wrapping a Keras model in "
            f"`.model` or `.encoder`. Received: learner={learner!r}"
        )
    return model


def _model_inputs(model: keras.Model) -> list | None:
    try:
        return list(model.inputs)
    except (AttributeError, TypeError, ValueError):
        return None


def _example_shape(model: keras.Model, example_shape) -> list[int | None]:
    if example_shape is not None:
        shape = list(example_shape)
        if not shape or any(d is not None and (not isinstance(d, int) or d < 1) for d in shape):
            raise ValueError(
                "Invalid value for argument `example_shape`: expected the shape of one example, "
                f"a non-empty sequence of positive integers. Received: example_shape={shape}"
            )
        return shape
    inputs = _model_inputs(model)
    if not inputs:
        raise ValueError(
            f"Cannot export: the learner's model {model.name!r} has no known input shape (it "
            "is not a functional or Sequential model with an `Input`), so the example shape "
            "of the serving signature is unknown. Build the model with `keras.Input(shape)` "
            "or pass `example_shape=` to `export`. Received: example_shape=None"
        )
    if len(inputs) != 1:
        raise ValueError(
            f"Cannot export: the learner's model {model.name!r} has {len(inputs)} inputs; "
            "episodes have a single example tensor. Received: a model with inputs "
            f"{[tuple(i.shape) for i in inputs]}"
        )
    return list(inputs[0].shape[1:])


def _example_dtype(model: keras.Model) -> tf.DType:
    """The serving dtype of examples: the model's input dtype (strings stay strings)."""
    dtype = model_input_dtype(model)
    return tf.string if dtype == tf.string else tf.float32


def _support_y_spec(learner, model, spec) -> tuple[bool, tf.TensorSpec]:
    """`(classification, spec)` of `support_y` for one episode."""
    if spec is not None:
        if not isinstance(spec, tf.TensorSpec) or spec.shape.rank is None or (
            spec.shape.rank < 1 or spec.shape[0] is not None
        ):
            raise ValueError(
                "Invalid value for argument `support_y_spec`: expected a `tf.TensorSpec` of "
                "shape [None, ...] (S is dynamic). Received: "
                f"support_y_spec={spec!r}"
            )
        classification = spec.dtype.is_integer or is_classifier(learner)
        return classification, tf.TensorSpec(spec.shape, spec.dtype, name="support_y")
    if is_regression(learner):
        target_shape = list(model.outputs[0].shape[1:]) if _model_inputs(model) else [None]
        return False, tf.TensorSpec([None, *target_shape], tf.float32, name="support_y")
    return True, tf.TensorSpec([None], tf.int32, name="support_y")


def _known_ways(learner: MetaLearner, model: keras.Model) -> int | None:
    """N when the learner fixes it: `learner.fixed_ways()`."""
    del model  # The learner knows (`MetaLearner.fixed_ways`).
    return learner.fixed_ways()
