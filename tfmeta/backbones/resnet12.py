"""ResNet-12, the backbone of most few-shot results on natural images since 2018."""

from collections.abc import Sequence

import keras

from tfmeta.backbones.image_input import check_image_shape
from tfmeta.backbones.initialization import (
    DEFAULT_KERNEL_INITIALIZER,
    check_kernel_initializer,
    layer_initializers,
)
from tfmeta.layers.batch_normalization import BatchNormalization
from tfmeta.layers.drop_block import DropBlock

POOLINGS = ("avg", "flatten")


def resnet12(
    input_shape: Sequence[int] = (84, 84, 3),
    filters: Sequence[int] = (64, 160, 320, 640),
    num_classes: int | None = None,
    pooling: str = "avg",
    drop_rate: float = 0.0,
    drop_block_size: int = 5,
    batch_norm_momentum: float = 0.9,
    name: str = "resnet12",
    kernel_initializer: str = DEFAULT_KERNEL_INITIALIZER,
) -> keras.Model:
    """Builds ResNet-12: four residual blocks of three 3x3 convolutions, then 2x2 max-pools.

    The architecture of Oreshkin et al. (TADAM, NeurIPS 2018) and Lee et al. (MetaOptNet,
    CVPR 2019): each block is [conv 3x3, batch norm, leaky ReLU 0.1] twice, then conv 3x3
    and batch norm, added to a 1x1-conv + batch-norm shortcut, then leaky ReLU 0.1 and a
    2x2 max-pool; convolutions have no bias. With the default widths 64-160-320-640 it has
    12.4 M parameters (12,424,320 trainable on RGB input). DropBlock (Ghiasi et al. 2018),
    with `drop_rate > 0`, follows the pools of the last two blocks, as in MetaOptNet.

    Without a head the output is the embedding ProtoNet needs (640 features with
    `pooling="avg"`, global average pooling; `pooling="flatten"` keeps the 5x5x640 = 16,000
    features of an 84x84 input); with `num_classes` a `Dense(num_classes)` head gives the
    logits MAML and Reptile need. Batch norm is `tfmeta.layers.BatchNormalization` (exact
    second derivatives for MAML).

    Args:
        input_shape: shape of one example, `(height, width, channels)`, at least 16x16.
        filters: output channels of the four blocks.
        num_classes: when given, a `Dense(num_classes)` head producing logits.
        pooling: "avg" or "flatten", how the last feature map becomes the embedding.
        drop_rate: DropBlock rate of the last two blocks (0 turns it off).
        drop_block_size: Side of DropBlock's squares.
        batch_norm_momentum: momentum of the batch norm moving statistics.
        name: name of the model.
        kernel_initializer: "torch" (default; PyTorch's rule: uniform in +-1/sqrt(fan_in);
            the convolutions have no bias) or "keras" (Glorot uniform; the default before
            issue 28).

    Returns:
        A built functional `keras.Model`.

    Example:
    >>> encoder = resnet12(input_shape=(84, 84, 3))
    >>> encoder.output_shape
    (None, 640)
    """
    input_shape = check_image_shape(input_shape, "resnet12", halvings=4)
    filters = tuple(int(f) for f in filters)
    if len(filters) != 4 or min(filters) < 1:
        raise ValueError(
            "Invalid value for argument `filters`: expected four positive integers. "
            f"Received: filters={filters}"
        )
    if pooling not in POOLINGS:
        raise ValueError(
            f"Invalid value for argument `pooling`: expected one of {POOLINGS}. "
            f"Received: pooling={pooling!r}"
        )
    if num_classes is not None and num_classes < 1:
        raise ValueError(
            "Invalid value for argument `num_classes`: expected a positive integer or None. "
            f"Received: num_classes={num_classes}"
        )

    def batch_norm(layer_name):
        return BatchNormalization(momentum=batch_norm_momentum, name=layer_name)

    kernel_initializer = check_kernel_initializer(kernel_initializer)

    def kernel(fan_in):
        initializers = layer_initializers(kernel_initializer, fan_in)
        initializers.pop("bias_initializer", None)
        return initializers

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for block, width in enumerate(filters):
        prefix = f"block{block}"
        shortcut = keras.layers.Conv2D(width, 1, use_bias=False, name=f"{prefix}_shortcut",
                                       **kernel(int(x.shape[-1])))(x)
        shortcut = batch_norm(f"{prefix}_shortcut_bn")(shortcut)
        for conv in range(3):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False,
                                    name=f"{prefix}_conv{conv}", **kernel(9 * int(x.shape[-1])))(x)
            x = batch_norm(f"{prefix}_bn{conv}")(x)
            if conv < 2:
                x = keras.layers.LeakyReLU(0.1, name=f"{prefix}_relu{conv}")(x)
        x = keras.layers.Add(name=f"{prefix}_add")([x, shortcut])
        x = keras.layers.LeakyReLU(0.1, name=f"{prefix}_relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"{prefix}_pool")(x)
        if drop_rate > 0 and block >= 2:
            x = DropBlock(drop_rate, drop_block_size, name=f"{prefix}_dropblock")(x)
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    if num_classes is not None:
        x = keras.layers.Dense(num_classes, name="logits",
                               **layer_initializers(kernel_initializer, int(x.shape[-1])))(x)
    return keras.Model(inputs, x, name=name)
