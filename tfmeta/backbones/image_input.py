"""The input check shared by the image backbones."""

from collections.abc import Sequence

from tfmeta.data.arguments import is_integer


def check_image_shape(input_shape: Sequence[int], backbone: str, halvings: int = 4) -> tuple:
    """Checks `(height, width, channels)` and that the image survives `halvings` 2x2 pools.

    Args:
        input_shape: The shape of one example.
        backbone: The backbone's name, for the message.
        halvings: How many times the backbone halves the height and width.

    Returns:
        `input_shape` as a tuple of ints.

    Raises:
        ValueError: In one line, naming the sizes that work.

    Example:
    >>> check_image_shape((32, 32, 3), "conv4")
    (32, 32, 3)
    """
    if isinstance(input_shape, str) or not isinstance(input_shape, Sequence) or any(
        not is_integer(d) for d in input_shape
    ):
        raise ValueError(
            "Invalid value for argument `input_shape`: expected (height, width, channels) "
            f"integers. Received: input_shape={input_shape!r}"
        )
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            "Invalid value for argument `input_shape`: expected (height, width, channels) "
            f"with positive entries. Received: input_shape={shape}"
        )
    smallest = 2**halvings
    if min(shape[:2]) < smallest:
        raise ValueError(
            f"Invalid value for argument `input_shape`: {backbone} halves the image {halvings} "
            f"times, so it needs images of at least {smallest}x{smallest} pixels (e.g. 28, 32, "
            f"64 or 84: the command line's --image_size). Received: input_shape={shape}"
        )
    return shape
