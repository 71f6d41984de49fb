"""The shape of the episodes a sampler draws: fixed N-way K-shot, or Meta-Dataset's variable.

`ways`, `shots` and `queries` are each an integer (fixed) or `None` (sampled per episode by
the rules of Meta-Dataset, Triantafillou et al. 2020, `meta_dataset/data/sampling.py`):

- ways: uniform in `[MIN_WAYS, max_ways]` (`max_ways` defaults to `min(50, classes)`);
- queries per class: `q = min(max_queries, floor(min_c n_c / 2))` over the episode's
  classes `c` of `n_c` examples (with fixed shots `K`: `min(max_queries, min_c n_c - K)`);
  `max_queries` counts queries PER CLASS, as in Meta-Dataset;
- support size: `|S| = min(sum_c floor(beta * min(100, n_c - q) + 1), max_support)`,
  `beta ~ U(0, 1)` drawn once per episode;
- shots of class `c`: `min(floor(p_c * (|S| - N)) + 1, n_c - q)` with `p_c` proportional
  to `n_c * exp(u_c)`, `u_c ~ U(log 0.5, log 2)`.

An `EpisodeShape` is what the checks of an entry point resolve these arguments to; the
`EpisodeSampler` reads it. Variable episodes keep static shapes: support and query sets are
padded to `support_size` and `query_size`, padded entries labelled `PADDING_LABEL` (-1).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tfmeta.data.arguments import (
    check_int_in_range,
    check_shots_and_queries,
    invalid_value,
    is_integer,
)

MIN_WAYS = 5
MAX_WAYS = 50
MAX_SUPPORT = 500
MAX_QUERIES = 10
MAX_SUPPORT_PER_CLASS = 100  # Meta-Dataset's max_support_size_contrib_per_class.
LOG_WEIGHT_RANGE = (math.log(0.5), math.log(2.0))
PADDING_LABEL = -1

# The keyword arguments every classification entry point takes for variable episodes.
VARIABLE_OPTIONS = ("max_ways", "max_support", "max_queries")


@dataclasses.dataclass(frozen=True)
class EpisodeShape:
    """Resolved episode sizes: each of `ways`, `shots`, `queries` an int or None (sampled).

    Attributes:
        ways: Classes per episode, or None (uniform in `[MIN_WAYS, max_ways]`).
        shots: Support examples per class, or None (Meta-Dataset's rule).
        queries: Query examples per class, or None (Meta-Dataset's rule).
        max_ways: The most classes of an episode (`ways` when fixed).
        max_support: The most support examples of an episode with `shots=None`.
        max_queries: The most query examples PER CLASS with `queries=None`.
        max_class_size: The size of the largest class.

    Example:
    >>> shape = EpisodeShape(5, 1, 15, max_ways=5, max_support=500, max_queries=10,
    ...                      max_class_size=20)
    >>> shape.variable, shape.support_size, shape.query_size
    (False, 5, 75)
    """

    ways: int | None
    shots: int | None
    queries: int | None
    max_ways: int
    max_support: int
    max_queries: int
    max_class_size: int

    def sampler_options(self) -> dict[str, int]:
        """The bounds of variable episodes, as `EpisodeSampler`'s keyword arguments."""
        return {"max_ways": self.max_ways, "max_support": self.max_support,
                "max_queries": self.max_queries}

    @property
    def variable(self) -> bool:
        """Whether any size is sampled per episode (then the sets are padded)."""
        return None in (self.ways, self.shots, self.queries)

    @property
    def max_queries_per_class(self) -> int:
        """The most query examples of one class."""
        if self.queries is not None:
            return self.queries
        if self.shots is None:
            return min(self.max_queries, self.max_class_size // 2)
        return min(self.max_queries, self.max_class_size - self.shots)

    @property
    def max_shots_per_class(self) -> int:
        """The most support examples of one class."""
        if self.shots is not None:
            return self.shots
        return min(self.max_class_size - 1, self.max_support - MIN_WAYS + 1)

    @property
    def picks_per_class(self) -> int:
        """How many distinct examples of each class an episode draws (static)."""
        return min(self.max_class_size, self.max_queries_per_class + self.max_shots_per_class)

    @property
    def support_size(self) -> int:
        """S, the (padded) support size of every episode."""
        if self.shots is not None:
            return self.max_ways * self.shots
        return min(self.max_support, self.max_ways * self.max_shots_per_class)

    @property
    def query_size(self) -> int:
        """Q, the (padded) query size of every episode."""
        return self.max_ways * self.max_queries_per_class


def check_episode_sizes(ways: Any, shots: Any, queries: Any) -> tuple:
    """Checks `ways`, `shots`, `queries` before any data is read: each a positive int or None.

    `None` means "sampled per episode". Fixed `ways` must be at least 1 here (the bound by
    the classes comes with `episode_shape`).

    Example:
    >>> check_episode_sizes(5, None, None)
    (5, None, None)
    """
    return tuple(
        None if value is None else check_int_in_range(name, value)
        for name, value in (("ways", ways), ("shots", shots), ("queries", queries))
    )


def min_class_size(shots: int | None, queries: int | None) -> int:
    """The fewest examples a class needs to give an episode of these sizes.

    Example:
    >>> min_class_size(1, 15), min_class_size(None, None), min_class_size(5, None)
    (16, 2, 6)
    """
    return (1 if shots is None else shots) + (1 if queries is None else queries)


def episode_shape(
    ways: Any,
    shots: Any,
    queries: Any,
    sizes: Any,
    *,
    classes_reason: str,
    size_reason: str,
    max_ways: Any = None,
    max_support: Any = MAX_SUPPORT,
    max_queries: Any = MAX_QUERIES,
) -> EpisodeShape:
    """Checks the episode sizes against the classes and resolves them to an `EpisodeShape`.

    Args:
        ways: Classes per episode, or None (sampled).
        shots: Support examples per class, or None (sampled).
        queries: Query examples per class, or None (sampled).
        sizes: The number of examples of each class (a sequence or array).
        classes_reason: What `len(sizes)` counts, for messages ("the number of classes in
            split 'train'").
        size_reason: What the smallest size counts, for messages ("drawings per character").
        max_ways: The most ways of a variable episode: None (the default) for
            `min(MAX_WAYS, classes)`, else an int in `[MIN_WAYS, classes]`.
        max_support: The most support examples of an episode with `shots=None`.
        max_queries: The most queries per class with `queries=None`.

    Returns:
        The `EpisodeShape`.

    Raises:
        ValueError: One line naming the argument, e.g. `max_ways` below 5 or above the classes.

    Example:
    >>> episode_shape(None, None, None, [20] * 30, classes_reason="30 classes",
    ...               size_reason="examples per class").support_size
    500
    """
    shots, queries = check_episode_sizes(None, shots, queries)[1:]
    sizes = [int(size) for size in sizes]
    num_classes, smallest, largest = len(sizes), min(sizes), max(sizes)
    if ways is not None:
        ways = check_int_in_range("ways", ways, high=num_classes, reason=classes_reason)
        resolved_ways = ways
    else:
        if num_classes < MIN_WAYS:
            raise invalid_value(
                "ways", f"an integer (ways=None samples {MIN_WAYS} or more ways per episode, "
                f"but there are {num_classes} classes: {classes_reason})", ways)
        if max_ways is None:
            resolved_ways = min(MAX_WAYS, num_classes)
        else:
            resolved_ways = check_int_in_range(
                "max_ways", max_ways, low=MIN_WAYS, high=num_classes,
                reason=f"at least {MIN_WAYS}, Meta-Dataset's fewest ways, and at most "
                f"{classes_reason}")
    if shots is None:
        max_support = check_int_in_range(
            "max_support", max_support, low=resolved_ways,
            reason=f"at least one support example for each of up to {resolved_ways} ways")
    if queries is None:
        max_queries = check_int_in_range("max_queries", max_queries)
    if shots is not None and queries is not None:
        check_shots_and_queries(shots, queries, smallest, size_reason)
    elif smallest < min_class_size(shots, queries):
        needed = min_class_size(shots, queries)
        raise ValueError(
            "Invalid values for arguments `shots` and `queries`: every class needs at least "
            f"{needed} examples for at least one support and one query example each, but the "
            f"smallest has {smallest} (the {size_reason}). Received: shots={shots}, "
            f"queries={queries}"
        )
    return EpisodeShape(
        ways, shots, queries, max_ways=resolved_ways,
        max_support=int(max_support) if is_integer(max_support) else MAX_SUPPORT,
        max_queries=int(max_queries) if is_integer(max_queries) else MAX_QUERIES,
        max_class_size=largest,
    )
