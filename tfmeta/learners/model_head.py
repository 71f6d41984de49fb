"""A model's output layer (its head) and the rest of it (its body), for head-only algorithms.

ANIL's closed-form head step (`tfmeta.learners.closed_form_head`) and Proto-MAML's
prototype head (`tfmeta.learners.prototype_head`) both split a functional or Sequential
model at the layer that computes its output: the body maps examples to the head's input
features, the head maps those to logits.
"""

from __future__ import annotations

import keras


def output_layer(model: keras.Model, purpose: str) -> keras.layers.Layer:
    """The layer whose output is `model`'s (one output, of a functional or Sequential model).

    Args:
        model: A built Keras model.
        purpose: What needs the head, for the error message (e.g. "The closed-form head
            step").

    Raises:
        ValueError: When the model is subclassed or has several outputs.

    Example:
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="head")])
    >>> output_layer(model, "This example").name
    'head'
    """
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        outputs = None
    if not outputs or len(outputs) != 1:
        raise ValueError(
            f"{purpose} needs a functional or Sequential model with one output. "
            f"Received: model={model.name!r}")
    return outputs[0]._keras_history.operation


def model_body(model: keras.Model, head: keras.layers.Layer) -> keras.Model | None:
    """The model up to the head's input, on the same weights.

    None when the head reads the model's input (there is no body).
    """
    features = head.input
    if any(features is tensor for tensor in model.inputs):
        return None
    return keras.Model(model.inputs, features, name=f"{model.name}_body")
