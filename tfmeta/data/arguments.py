"""Eager argument checks with Keras-style error messages, shared by data and learners."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def invalid_value(name: str, expected: str, value: Any) -> ValueError:
    """Returns the `ValueError` for one bad argument, in the Keras wording.

    Args:
        name: The argument's name.
        expected: What was expected, as a phrase ("a positive integer").
        value: The value received.

    Returns:
        A `ValueError` such as "Invalid value for argument `ways`: expected a
        positive integer. Received: ways=0".

    Example:
    >>> str(invalid_value("ways", "a positive integer", 0))
    'Invalid value for argument `ways`: expected a positive integer. Received: ways=0'
    """
    return ValueError(
        f"Invalid value for argument `{name}`: expected {expected}. Received: {name}={value!r}"
    )


def is_integer(value: Any) -> bool:
    """Whether `value` is an integer (Python or NumPy), booleans excluded.

    Example:
    >>> is_integer(3), is_integer(True), is_integer(3.0)
    (True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int_in_range(
    name: str, value: Any, low: int = 1, high: int | None = None, reason: str = ""
) -> int:
    """Checks that `value` is an integer in `[low, high]` and returns it as an `int`.

    Args:
        name: The argument's name, for the message.
        value: The value received.
        low: The smallest accepted value.
        high: The largest accepted value, or `None` for no upper bound.
        reason: Optional parenthesised explanation of `high` for the message,
            e.g. "the number of classes in split 'train'".

    Returns:
        `value` as a Python `int`.

    Raises:
        ValueError: If `value` is not an integer in range.

    Example:
    >>> check_int_in_range("shots", 5)
    5
    """
    if high is None:
        expected = "a positive integer" if low == 1 else f"an integer >= {low}"
    else:
        expected = f"an integer between {low} and {high}"
    if reason:
        expected += f" ({reason})"
    if not is_integer(value) or value < low or (high is not None and value > high):
        raise invalid_value(name, expected, value)
    return int(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Checks that `value` is one of the strings `choices` and returns it.

    Example:
    >>> check_choice("scheme", "maml", ("vinyals", "maml", "lake"))
    'maml'
    """
    if not isinstance(value, str) or value not in choices:
        expected = "one of " + ", ".join(repr(choice) for choice in choices)
        raise invalid_value(name, expected, value)
    return value


def check_shots_and_queries(shots: int, queries: int, examples: int, what: str) -> None:
    """Checks that one class can give `shots + queries` distinct examples.

    Args:
        shots: Support examples per class.
        queries: Query examples per class.
        examples: The number of examples of the smallest class.
        what: What `examples` counts, for the message ("examples per class").

    Raises:
        ValueError: If `shots + queries > examples`.

    Example:
    >>> check_shots_and_queries(1, 15, 20, "drawings per character")
    """
    if shots + queries > examples:
        raise ValueError(
            "Invalid values for arguments `shots` and `queries`: expected shots + queries to be "
            f"at most {examples} (the {what}), so that support and query examples are distinct. "
            f"Received: shots={shots}, queries={queries}"
        )


# Seeds are 64-bit signed integers (TensorFlow's stateless random ops take int64 keys): a
# larger value would wrap around onto a negative seed's episodes.
SEED_RANGE = (-(2**63), 2**63 - 1)


def check_seed(value: Any, name: str = "seed", low: int = SEED_RANGE[0],
               high: int = SEED_RANGE[1]) -> int:
    """Checks that `value` is an integer seed in `[low, high]` and returns it as an `int`.

    Example:
    >>> check_seed(7)
    7
    """
    if not is_integer(value) or not low <= value <= high:
        raise invalid_value(name, f"an integer between {low} and {high}", value)
    return int(value)


def check_float(name: str, value: Any, low: float = 0.0, *, inclusive: bool = False,
                high: float | None = None) -> float:
    """Checks that `value` is a finite real number above `low` (or at it, `inclusive`).

    Python and NumPy numbers are accepted; booleans, strings, NaN and infinities are not.

    Args:
        name: The argument's name, for the message.
        value: The value received.
        low: The lower bound.
        inclusive: Whether `low` itself is accepted.
        high: An optional upper bound (inclusive).

    Returns:
        `value` as a Python `float`.

    Example:
    >>> check_float("inner_learning_rate", 0.5)
    0.5
    """
    bound = f">= {low}" if inclusive else f"> {low}"
    expected = f"a finite number {bound}" + (f" and <= {high}" if high is not None else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise invalid_value(name, expected, value)
    number = float(value)
    above = number >= low if inclusive else number > low
    if not math.isfinite(number) or not above or (high is not None and number > high):
        raise invalid_value(name, expected, value)
    return number


def check_bool(name: str, value: Any) -> bool:
    """Checks that `value` is a boolean (Python or NumPy) and returns it as a `bool`.

    Strings such as `"no"` are refused rather than read as True.

    Example:
    >>> check_bool("first_order", False)
    False
    """
    if not isinstance(value, bool | np.bool_):
        raise invalid_value(name, "True or False", value)
    return bool(value)


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes, or None where the system does not say.

    Example:
    >>> memory_bytes() is None or memory_bytes() > 0
    True
    """
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


# An element may take at most this share of the memory: tf.data's parallel map and
# prefetch hold several elements at once, and training needs the rest.
ELEMENT_MEMORY_SHARE = 1 / 8


def check_element_size(nbytes: int, arguments: dict[str, Any]) -> None:
    """Refuses a dataset element (meta-batch) of `nbytes` bytes that cannot fit in memory.

    Args:
        nbytes: The size of one element, computed from the arguments.
        arguments: The arguments that set the size, for the message.

    Raises:
        ValueError: If `nbytes` exceeds `ELEMENT_MEMORY_SHARE` of the physical memory.

    Example:
    >>> check_element_size(1024, {"meta_batch_size": 4})
    """
    total = memory_bytes()
    if total is None or nbytes <= total * ELEMENT_MEMORY_SHARE:
        return
    names = ", ".join(f"`{name}`" for name in arguments)
    received = ", ".join(f"{name}={value!r}" for name, value in arguments.items())
    raise ValueError(
        f"Invalid values for arguments {names}: one meta-batch would take "
        f"{nbytes / 2**30:.1f} GiB, more than {ELEMENT_MEMORY_SHARE:.0%} of this machine's "
        f"{total / 2**30:.1f} GiB of memory (tf.data holds several at once); use a smaller "
        f"meta-batch. Received: {received}"
    )


# The largest image side accepted. One decoded 1024x1024 RGB image is 3 MiB as uint8 and
# 12 MiB as the float32 the resize works in; no few-shot benchmark uses more than 224 px. A
# larger side fails here, in one line, instead of as a ResourceExhaustedError mid-decode.
MAX_IMAGE_SIZE = 1024


def check_image_size(value: Any) -> int:
    """Checks that `value` is an image side in `[1, MAX_IMAGE_SIZE]` and returns it.

    Example:
    >>> check_image_size(84)
    84
    """
    return check_int_in_range("image_size", value, high=MAX_IMAGE_SIZE,
                              reason="the largest side tfmeta decodes to, MAX_IMAGE_SIZE")


# The decoded images of a dataset may take at most this share of the memory: training, the
# episode pipeline and the decoding batches need the rest.
DECODED_MEMORY_SHARE = 1 / 2


def check_decoded_size(num_images: int, image_size: int, channels: int, where: str) -> None:
    """Refuses `num_images` decoded `uint8` images that cannot fit in this machine's memory.

    Args:
        num_images: How many images would be decoded and kept.
        image_size: Their side.
        channels: Their channels (3 for RGB).
        where: The data, for the message.

    Raises:
        ValueError: If they would take more than `DECODED_MEMORY_SHARE` of the memory.

    Example:
    >>> check_decoded_size(100, 28, 1, "a folder")
    """
    total = memory_bytes()
    nbytes = num_images * image_size * image_size * channels
    if total is None or nbytes <= total * DECODED_MEMORY_SHARE:
        return
    raise ValueError(
        f"Invalid value for argument `image_size`: the {num_images:,} images of {where} "
        f"decoded at {image_size}x{image_size} would take {nbytes / 2**30:.1f} GiB, more than "
        f"{DECODED_MEMORY_SHARE:.0%} of this machine's {total / 2**30:.1f} GiB of memory; use "
        f"a smaller image_size. Received: image_size={image_size}"
    )
