"""DropBlock: dropout of contiguous square regions of a feature map."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmeta")
class DropBlock(keras.layers.Layer):
    """Drops `block_size x block_size` squares of `[batch, H, W, C]` features in training.

    Ghiasi, Lin and Le, "DropBlock: A regularization method for convolutional networks",
    NeurIPS 2018: block centres are drawn with probability `gamma = rate / block_size**2 *
    H * W / ((H - block_size + 1) * (W - block_size + 1))` among the positions where a whole
    block fits, each centre zeroes its block (per example and channel), and the kept
    features are scaled by `count / kept` so the expected sum is unchanged. Outside
    training, or with `rate=0`, the layer is the identity. A `block_size` larger than the
    feature map is cut to its side.

    Args:
        rate: The fraction of features to drop, in `[0, 1)`.
        block_size: Side of the dropped squares.
        seed: Optional integer seed.
        **kwargs: Base layer arguments.

    Call arguments:
        inputs: A `[batch, H, W, C]` tensor.
        training: Whether to drop.

    Example:
    >>> layer = DropBlock(rate=0.1, block_size=3)
    >>> tuple(layer(ops.ones([2, 8, 8, 4]), training=False).shape)
    (2, 8, 8, 4)
    """

    def __init__(self, rate: float = 0.1, block_size: int = 5, seed: int | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(
                "Invalid value for argument `rate`: expected a float in [0, 1). "
                f"Received: rate={rate}"
            )
        if int(block_size) < 1:
            raise ValueError(
                "Invalid value for argument `block_size`: expected a positive integer. "
                f"Received: block_size={block_size}"
            )
        self.rate = float(rate)
        self.block_size = int(block_size)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        height, width = inputs.shape[1], inputs.shape[2]
        size = min(self.block_size, height, width)
        gamma = (self.rate / size**2 * height * width
                 / ((height - size + 1) * (width - size + 1)))
        # Centres only where a whole block fits, then each centre grows into its block.
        valid_shape = (ops.shape(inputs)[0], height - size + 1, width - size + 1,
                       inputs.shape[3])
        centres = ops.cast(
            keras.random.uniform(valid_shape, seed=self.seed_generator) < gamma, inputs.dtype
        )
        low = (size - 1) // 2
        high = size - 1 - low
        centres = ops.pad(centres, [[0, 0], [low, high], [low, high], [0, 0]])
        dropped = ops.max_pool(centres, pool_size=size, strides=1, padding="same")
        keep = 1.0 - dropped
        count = ops.cast(ops.size(keep), inputs.dtype)
        kept = ops.maximum(ops.sum(keep), 1.0)
        return inputs * keep * (count / kept)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "block_size": self.block_size,
                "seed": self.seed}
