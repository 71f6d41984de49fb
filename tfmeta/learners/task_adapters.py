"""TSA's adapted network: the frozen encoder with residual adapters and a feature alignment."""

from __future__ import annotations

import keras

from tfmeta.layers.conv_batch_normalization import ConvBatchNormalization
from tfmeta.layers.residual_adapter import ResidualAdapter

ALIGNMENT_LAYER = "tsa_alignment"


def with_task_adapters(encoder: keras.Model, argument: str = "encoder"
                       ) -> tuple[keras.Model, list[str]]:
    """The encoder's graph with an adapter beside every convolution, then an alignment.

    Task-specific adapters (Li, Liu and Bilen, CVPR 2022): every `Conv2D` (also the one
    inside a `tfmeta.layers.ConvBatchNormalization`, conv4's first block) becomes a
    `tfmeta.layers.ResidualAdapter` around that same layer object, and the flattened
    features go through the paper's pre-classifier alignment, a linear map
    `Dense(D, use_bias=False)` initialised to the identity (`ALIGNMENT_LAYER`). Every other
    layer is the encoder's own object, so the copy shares all the encoder's weights and
    computes exactly the encoder's function until the adapters move.

    Args:
        encoder: A built functional or Sequential Keras model with at least one Conv2D.
        argument: The name of the argument the encoder came as, for errors.

    Returns:
        `(model, adapted_layers)`: the adapted model and the names of the layers whose
        weights the task fits (the adapters and the alignment).

    Raises:
        ValueError: For a subclassed encoder (its graph cannot be copied), or one
            without convolutions.

    Example:
    >>> import tfmeta
    >>> model, names = with_task_adapters(tfmeta.backbones.conv4((28, 28, 1), filters=8))
    >>> names[0], names[-1], model.output_shape
    ('block0_conv_bn_adapter', 'tsa_alignment', (None, 8))
    """
    if not (isinstance(encoder, keras.Sequential) or hasattr(encoder, "_run_through_graph")):
        raise ValueError(
            f"Invalid value for argument `{argument}`: test_time_adaptation='tsa' copies the "
            "encoder's graph to put adapters beside its convolutions, so it needs a "
            f"functional or Sequential model. Received: a subclassed {type(encoder).__name__}"
        )
    adapted = []

    def clone(layer):
        if isinstance(layer, ConvBatchNormalization) or type(layer) is keras.layers.Conv2D:
            adapter = ResidualAdapter(layer, name=f"{layer.name}_adapter")
            adapted.append(adapter.name)
            return adapter
        return layer

    copy = keras.models.clone_model(encoder, clone_function=clone, recursive=True)
    if not adapted:
        raise ValueError(
            f"Invalid value for argument `{argument}`: test_time_adaptation='tsa' puts an "
            "adapter beside each convolution, and the encoder has no Conv2D layer (use "
            f"'finetune' instead). Received: {argument}={encoder.name!r}"
        )
    features = keras.layers.Flatten(name="tsa_flatten")(copy.outputs[0])
    width = int(features.shape[-1])
    aligned = keras.layers.Dense(width, use_bias=False, kernel_initializer="identity",
                                 name=ALIGNMENT_LAYER)(features)
    model = keras.Model(copy.inputs, aligned, name=f"{encoder.name}_tsa")
    return model, [*adapted, ALIGNMENT_LAYER]
