"""How a learner is served: the signatures' input specs, output key and extra endpoints.

Every learner describes itself with a `ServingSpec` (`MetaLearner.serving_spec`), so that
`tfmeta.export` writes its SavedModel from the description and the learner's adapt and
predict steps alone, knowing no learner type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

from tfmeta.learners.episode import model_input_dtype
from tfmeta.learners.labels import is_classifier, is_regression


@dataclasses.dataclass(frozen=True)
class ServingSpec:
    """What the SavedModel of a learner takes and returns, for ONE episode.

    Attributes:
        examples: The spec of `support_x` / `query_x`, `[None, *example_shape]` (float32,
            or tf.string for raw text).
        support_y: The spec of `support_y`, `[None]` int32 labels or
            `[None, *target_shape]` float32 targets.
        output_key: `"logits"` (classification) or `"predictions"` (regression).
        ways: The number of classes the learner fixes (labels must be in `0..ways-1`), or
            None (N = max(support_y) + 1 at run time).
        every_class: Whether every class `0..N-1` needs a support example (prototypes).
        endpoints: Extra endpoints, name -> `(function, input_signature)`; e.g.
            ProtoNet's `embed`.
        task_state_size: P, the length of one task's state from `adapt_step`, when the
            learner fixes it (None: it depends on the episode, e.g. ProtoNet's ways).

    Example:
    >>> import tfmeta
    >>> spec = tfmeta.ProtoNet(tfmeta.backbones.mlp((4,), (8,), 8)).serving_spec()
    >>> spec.examples.shape.as_list(), spec.output_key, sorted(spec.endpoints)
    ([None, 4], 'logits', ['embed'])
    """

    examples: tf.TensorSpec
    support_y: tf.TensorSpec
    output_key: str
    ways: int | None = None
    every_class: bool = False
    endpoints: dict[str, tuple[Callable, list[tf.TensorSpec]]] = dataclasses.field(
        default_factory=dict)
    task_state_size: int | None = None

    @property
    def classification(self) -> bool:
        """Whether `support_y` holds integer class labels."""
        return self.output_key == "logits"


def describe_serving(
    learner: Any,
    model: keras.Model,
    example_shape: Sequence[int | None] | None = None,
    support_y_spec: tf.TensorSpec | None = None,
    **options: Any,
) -> ServingSpec:
    """The `ServingSpec` of a learner whose examples go to the Keras `model`.

    The example shape and dtype are `model`'s input's (`example_shape` overrides the
    shape); a regression learner (its compiled loss, see `labels.is_regression`) takes
    float32 targets of `model`'s output shape, any other int32 labels (`support_y_spec`
    overrides this). `options` are the other fields (`every_class`, `endpoints`);
    `ways` is `learner.fixed_ways()`.

    Raises:
        ValueError: For an unknown example shape or a bad `support_y_spec`.
    """
    shape = _example_shape(model, example_shape)
    # Raw text stays strings and token ids integers; every other example is float32.
    dtype = model_input_dtype(model)
    dtype = dtype if dtype in (tf.string, tf.int32) else tf.float32
    classification, support_y = _support_y_spec(learner, model, support_y_spec)
    return ServingSpec(
        examples=tf.TensorSpec([None, *shape], dtype),
        support_y=support_y,
        output_key="logits" if classification else "predictions",
        ways=learner.fixed_ways() if classification else None,
        **options,
    )


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
