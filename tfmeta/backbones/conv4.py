"""The four-block convolutional backbone of the few-shot literature."""

from collections.abc import Sequence

import keras

from tfmeta.backbones.image_input import check_image_shape
from tfmeta.backbones.initialization import (
    DEFAULT_KERNEL_INITIALIZER,
    check_kernel_initializer,
    layer_initializers,
)
from tfmeta.data.arguments import check_int_in_range
from tfmeta.layers.batch_normalization import BatchNormalization
from tfmeta.layers.conv_batch_normalization import ConvBatchNormalization


def conv4(
    input_shape: Sequence[int] = (28, 28, 1),
    filters: int = 64,
    num_classes: int | None = None,
    batch_norm_momentum: float = 0.9,
    name: str = "conv4",
    kernel_initializer: str = DEFAULT_KERNEL_INITIALIZER,
) -> keras.Model:
    """Builds conv4: four blocks of [conv 3x3, batch norm, ReLU, max-pool 2].

    This is the backbone of Vinyals et al. (2016), Finn et al. (2017) and Snell
    et al. (2017). Without a head it maps an image to a flat embedding (64
    features for 28x28 Omniglot, 1,600 for 84x84 miniImageNet), as ProtoNet
    needs; with `num_classes` it ends in a dense classification layer whose
    outputs are logits, as MAML and Reptile need.

    Its batch norm is `tfmeta.layers.BatchNormalization`: the same rule as
    `keras.layers.BatchNormalization`, but with an exact second derivative
    (which second-order MAML needs) and TensorFlow's fused kernel, which made
    conv4 training 1.4x (MAML) to 1.6x (ProtoNet) faster on CPU. Block 0 (greyscale
    or RGB input) is one `tfmeta.layers.ConvBatchNormalization` layer,
    `block0_conv_bn`, holding `block0_conv` and `block0_bn`: in training its
    batch norm folds into the convolution (the same function and derivatives,
    13-21% less CPU time per MAML or ProtoNet task on Omniglot shapes).

    Args:
        input_shape: shape of one example, `(height, width, channels)`: greyscale or RGB,
            at least 16x16 (e.g. 28, 32, 64 or 84; 84x84x3 gives 1,600 features).
        filters: number of filters of every convolution.
        num_classes: when given, a `Dense(num_classes)` head producing logits.
        batch_norm_momentum: momentum of the batch norm moving statistics. The
            default 0.9 is PyTorch's default (its `momentum=0.1`), as in the
            reference ProtoNet and MAML code; Keras' own default of 0.99 left
            the moving statistics far from the data after a few hundred steps
            (a 200-step ProtoNet scored 0.768 with them, 0.957 with batch
            statistics).
        name: name of the model.
        kernel_initializer: "torch" (default; PyTorch's rule: kernels and biases uniform
            in +-1/sqrt(fan_in)) or "keras" (Glorot uniform kernels, zero biases; the default
            before issue 28), for the convolutions and the head.

    Returns:
        A built functional `keras.Model`.

    Example:
    >>> encoder = conv4(input_shape=(28, 28, 1))
    >>> encoder.output_shape
    (None, 64)
    >>> classifier = conv4(input_shape=(28, 28, 1), num_classes=5)
    >>> classifier.output_shape
    (None, 5)

    """
    input_shape = check_image_shape(input_shape, "conv4")
    filters = check_int_in_range("filters", filters)
    if num_classes is not None:
        num_classes = check_int_in_range("num_classes", num_classes)
    if filters < 1:
        raise ValueError(
            f"Invalid value for argument `filters`: expected a positive integer. "
            f"Received: filters={filters}"
        )
    if not 0.0 <= batch_norm_momentum < 1.0:
        raise ValueError(
            "Invalid value for argument `batch_norm_momentum`: expected a float in [0, 1). "
            f"Received: batch_norm_momentum={batch_norm_momentum}"
        )
    if num_classes is not None and num_classes < 1:
        raise ValueError(
            "Invalid value for argument `num_classes`: expected a positive integer or None. "
            f"Received: num_classes={num_classes}"
        )
    kernel_initializer = check_kernel_initializer(kernel_initializer)
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for block in range(4):
        conv = keras.layers.Conv2D(
            filters, 3, padding="same", name=f"block{block}_conv",
            **layer_initializers(kernel_initializer, 9 * int(x.shape[-1])))
        batch_norm = BatchNormalization(momentum=batch_norm_momentum, name=f"block{block}_bn")
        if block == 0:
            # Greyscale or RGB input: the batch norm folds into the convolution in training.
            x = ConvBatchNormalization(conv, batch_norm, name="block0_conv_bn")(x)
        else:
            x = batch_norm(conv(x))
        x = keras.layers.ReLU(name=f"block{block}_relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if num_classes is not None:
        x = keras.layers.Dense(num_classes, name="logits",
                               **layer_initializers(kernel_initializer, int(x.shape[-1])))(x)
    return keras.Model(inputs, x, name=name)
