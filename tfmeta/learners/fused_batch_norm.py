"""Keras' batch norm on images in a user's model runs as tfmeta's fused layer, same weights."""

import warnings

import keras

from tfmeta.layers.batch_normalization import BatchNormalization


def with_fused_batch_norm(model: keras.Model, learner: str) -> keras.Model:
    """`model`, or a copy of its graph whose image batch norms are tfmeta's, on shared weights.

    A `keras.layers.BatchNormalization` over the channels of 4-D (image) inputs computes
    what `tfmeta.layers.BatchNormalization` computes, but on TensorFlow it is composite
    (several kernels per call, each differentiated in turn) and its second derivative
    drops a term. Where a functional or Sequential model has such layers, the learner
    runs a copy of the model's graph (`keras.models.clone_model`) in which every other
    layer is the user's own layer object and each such batch norm is a
    `tfmeta.layers.BatchNormalization` holding the very same four variables. Training
    the learner therefore trains and updates the user's `model`, saving the learner saves
    the copy, and the moving statistics follow the same rule. A warning names the layers.

    Layers are left as they are (and the model returned unchanged) when they normalise
    other than the last axis of a 4-D input, are synchronised, frozen or regularised or
    constrained, or when the model is subclassed (its graph cannot be copied).

    Args:
        model: the user's built Keras model.
        learner: the learner's class name, for the warning.

    Returns:
        `model` itself, or the copy sharing its weights.
    """
    if not _has_graph(model):
        return model
    swapped = [layer for layer in model._flatten_layers(include_self=False)
               if _fusable(layer)]
    if not swapped:
        return model
    names = [layer.name for layer in swapped]
    fusable = {id(layer) for layer in swapped}

    def clone(layer):
        return _fused_copy(layer) if id(layer) in fusable else layer

    try:
        copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except Exception:  # noqa: BLE001 - any graph Keras cannot copy keeps the user's layers.
        return model
    if len(copy.weights) != len(model.weights) or any(
            a is not b for a, b in zip(copy.weights, model.weights)):
        return model  # Nothing silently diverges: the copy must share every weight.
    warnings.warn(
        f"{learner}: the keras.layers.BatchNormalization layers {names} of model "
        f"{model.name!r} run as tfmeta.layers.BatchNormalization on the same variables "
        "(TensorFlow's fused kernel: faster, and an exact second derivative). Training "
        "updates your model's weights as before; the learner's `model` is a copy of its "
        "graph. Pass fuse_batch_norm=False to keep Keras' layer.",
        stacklevel=4,
    )
    return copy


def _has_graph(model: keras.Model) -> bool:
    return isinstance(model, keras.Sequential) or hasattr(model, "_run_through_graph")


def _fusable(layer) -> bool:
    if type(layer) is not keras.layers.BatchNormalization or not layer.built:
        return False
    spec = layer.input_spec
    rank = getattr(spec, "ndim", None)
    return (
        rank == 4
        and layer.axis in (-1, 3)
        and not getattr(layer, "synchronized", False)
        and layer.trainable
        and all(getattr(layer, attribute, None) is None for attribute in (
            "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"))
    )


def _fused_copy(layer) -> BatchNormalization:
    copy = BatchNormalization(momentum=layer.momentum, epsilon=layer.epsilon,
                              center=layer.center, scale=layer.scale, name=layer.name,
                              dtype=layer.dtype_policy)
    # The same variable objects: assigning them tracks them as this layer's weights.
    copy.gamma = layer.gamma if layer.scale else None
    copy.beta = layer.beta if layer.center else None
    copy.moving_mean = layer.moving_mean
    copy.moving_variance = layer.moving_variance
    copy.built = True
    return copy
