"""Vectorised, stateless sampling of a meta-batch of N-way K-shot (or variable) episodes.

An `EpisodeSampler` turns a batch index into one meta-batch of episodes in three stages
that can each be tested on their own:

1. `describe`: which classes (N distinct per episode, in a random order that is the label
   mapping) and which examples (K + Q distinct per class) each episode uses, as indices.
2. `read`: one `tf.gather` from a single in-memory tensor holding every example.
3. `decode`: per-example quarter-turn rotation (for rotated classes), then `float32`;
   string examples (raw text) are passed through as `tf.string`.

All randomness is `tf.random.stateless_*` keyed on `(seed, batch index)`, so the batches
are a pure function of the seed and can be produced by a parallel `map` in any order.

Variable episodes (`ways`, `shots` or `queries` None: Meta-Dataset's rules, see
`tfmeta.data.episode_shape`) are drawn by the same stages: `describe` samples the sizes per
episode and pads the support and query sets to the static sizes of their `EpisodeShape`;
padded entries read no example (zeros, or "" for text) and have the label -1.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import check_element_size
from tfmeta.data.episode_shape import (
    LOG_WEIGHT_RANGE,
    MAX_QUERIES,
    MAX_SUPPORT,
    MAX_SUPPORT_PER_CLASS,
    MAX_WAYS,
    MIN_WAYS,
    PADDING_LABEL,
    EpisodeShape,
)

_ALGORITHM = "philox"


class EpisodeIndices(NamedTuple):
    """Where a meta-batch of episodes reads its examples (the `describe` stage).

    Attributes:
        support_index: `[B, N*K]` int32 rows of the example tensor, shuffled.
        support_y: `[B, N*K]` int32 labels in `0..N-1`.
        query_index: `[B, N*Q]` int32 rows of the example tensor, shuffled.
        query_y: `[B, N*Q]` int32 labels in `0..N-1`.
        classes: `[B, N]` int32 class ids; label `j` of episode `b` is `classes[b, j]`.

    For variable episodes, N, N*K and N*Q are the padded sizes of the `EpisodeShape`: the
    real entries come first (shuffled), then padding with label -1 (and row 0); labels of
    episode `b` are `0..ways_b - 1`.
    """

    support_index: tf.Tensor
    support_y: tf.Tensor
    query_index: tf.Tensor
    query_y: tf.Tensor
    classes: tf.Tensor


class EpisodeSizes(NamedTuple):
    """The sizes of a meta-batch of variable episodes, and the random draws they follow.

    Attributes:
        ways: `[B]` int32 classes of each episode, N_b.
        classes: `[B, W]` int32 class ids (slots `>= N_b` unused), W = the shape's max ways.
        shots: `[B, W]` int32 support examples per class (0 for unused slots).
        queries: `[B]` int32 query examples per class.
        support_size: `[B]` int32 |S| drawn by the support-size rule (the shots sum to at
            most this, fewer where a class has too few examples).
        beta: `[B]` float64 draws of U(0, 1) of the support-size rule.
        log_weights: `[B, W]` float64 draws of U(log 0.5, log 2) of the shots rule.
    """

    ways: tf.Tensor
    classes: tf.Tensor
    shots: tf.Tensor
    queries: tf.Tensor
    support_size: tf.Tensor
    beta: tf.Tensor
    log_weights: tf.Tensor


def rotate_quarter_turns(images: tf.Tensor, turns: tf.Tensor) -> tf.Tensor:
    """Rotates each image of a `[B, S, H, H, ...]` batch counter-clockwise by `90 * turns`.

    Matches `np.rot90(image, k=turns)` (and `tf.image.rot90`) per image.

    Args:
        images: A tensor of rank >= 4 whose axes 2 and 3 are a square image.
        turns: A `[B, S]` integer tensor of quarter turns in `0..3`.

    Returns:
        The rotated images, same shape and dtype.

    Example:
    >>> x = tf.reshape(tf.range(4), [1, 1, 2, 2])
    >>> rotate_quarter_turns(x, tf.constant([[1]]))[0, 0].numpy().tolist()
    [[1, 3], [0, 2]]
    """
    # Built from a transpose and a row reversal (both fast on CPU, unlike a column
    # reversal), then each image picks its rotation with one gather.
    rank = images.shape.rank
    swap = [0, 1, 3, 2, *range(4, rank)]
    rows_reversed = tf.range(images.shape[2] - 1, -1, -1)

    def transpose(x: tf.Tensor) -> tf.Tensor:
        return tf.transpose(x, swap)

    def flip_rows(x: tf.Tensor) -> tf.Tensor:
        return tf.gather(x, rows_reversed, axis=2)

    quarter = flip_rows(transpose(images))
    half = flip_rows(transpose(quarter))
    three_quarters = transpose(flip_rows(images))
    candidates = tf.stack([images, quarter, half, three_quarters], axis=2)
    return tf.gather(candidates, tf.cast(turns, tf.int32), batch_dims=2)


class EpisodeSampler:
    """Maps a batch index to one meta-batch `(inputs, query_y)` of the episode contract.

    Classes are rows of a class table over one flat tensor of examples: class `c` owns
    the examples `offsets[c] .. offsets[c] + sizes[c] - 1` and, optionally, is shown
    rotated by `turns[c]` quarter turns. Arguments are trusted (the public entry points
    check them), except for the size of a meta-batch: one that cannot fit in memory
    raises a `ValueError` (see `tfmeta.data.arguments.check_element_size`).

    Args:
        examples: `[num_examples, *example_shape]` array of all examples: numbers (cast
            to `float32` after the gather) or strings (raw text, kept `tf.string`).
        offsets: `[C]` first example row of each class.
        sizes: `[C]` number of examples of each class (each >= shots + queries, or
            >= shots with a separate query pool).
        ways: Classes per episode (N), or None: uniform in `[5, max_ways]` per episode.
        shots: Support examples per class (K), or None: Meta-Dataset's rule per episode.
        queries: Query examples per class (Q), or None: Meta-Dataset's rule per episode.
        meta_batch_size: Episodes per batch (B).
        seed: Integer seed; batch `i` depends only on `(seed, i)`.
        turns: Optional `[C]` quarter turns (0..3) per class; examples must be square.
        scale: Optional factor applied after the cast to `float32` (e.g. 1/255).
        max_ways: With `ways=None`, the most ways (default `min(50, C)`).
        max_support: With `shots=None`, the most support examples of an episode.
        max_queries: With `queries=None`, the most query examples per class.
        query_offsets: Optional `[C]` first row of each class's separate query pool: the
            support examples then come from `offsets`/`sizes` and the queries from
            `query_offsets[c] .. query_offsets[c] + query_sizes[c] - 1` (e.g. robot
            demonstrations from other starts than the support's). Fixed shapes only.
        query_sizes: `[C]` examples of each query pool (each >= queries), with
            `query_offsets`.

    Example:
    >>> sampler = EpisodeSampler(np.zeros([10, 4], "float32"), offsets=np.arange(5) * 2,
    ...     sizes=np.full(5, 2), ways=3, shots=1, queries=1, meta_batch_size=2, seed=0)
    >>> inputs, query_y = sampler(tf.constant(0, tf.int64))
    >>> inputs["support_x"].shape, query_y.shape
    (TensorShape([2, 3, 4]), TensorShape([2, 3]))
    """

    def __init__(
        self,
        examples: np.ndarray | tf.Tensor,
        offsets: np.ndarray,
        sizes: np.ndarray,
        ways: int,
        shots: int,
        queries: int,
        meta_batch_size: int,
        seed: int,
        turns: np.ndarray | None = None,
        scale: float | None = None,
        *,
        max_ways: int | None = None,
        max_support: int = MAX_SUPPORT,
        max_queries: int = MAX_QUERIES,
        query_offsets: np.ndarray | None = None,
        query_sizes: np.ndarray | None = None,
    ) -> None:
        sizes = np.asarray(sizes, dtype=np.int32)
        if ways is None and max_ways is None:
            max_ways = min(MAX_WAYS, len(sizes))
        self.shape = EpisodeShape(
            ways, shots, queries, max_ways=ways if ways is not None else int(max_ways),
            max_support=int(max_support), max_queries=int(max_queries),
            max_class_size=int(sizes.max()))
        _check_meta_batch_memory(examples, sizes, self.shape, meta_batch_size)
        self.ways = ways
        self.shots = shots
        self.queries = queries
        self.meta_batch_size = meta_batch_size
        self.seed = seed
        self.scale = scale
        self.num_classes = int(sizes.shape[0])
        self.max_size = int(sizes.max())
        self.uniform_sizes = bool((sizes == self.max_size).all())
        self.example_shape = tuple(examples.shape[1:])
        self._examples = tf.convert_to_tensor(examples)
        self._offsets = tf.constant(np.asarray(offsets, dtype=np.int32))
        self._sizes = tf.constant(sizes)
        self._turns = None
        if turns is not None and np.any(turns):
            self._turns = tf.constant(np.asarray(turns, dtype=np.int32))
        self._query_pool = None
        if query_offsets is not None:
            if self.shape.variable:
                raise ValueError("A separate query pool (`query_offsets`) needs fixed ways, "
                                 f"shots and queries. Received: ways={ways}, shots={shots}, "
                                 f"queries={queries}")
            query_sizes = np.asarray(query_sizes, dtype=np.int32)
            self._query_pool = (tf.constant(np.asarray(query_offsets, dtype=np.int32)),
                                tf.constant(query_sizes), int(query_sizes.max()))

    def __call__(self, index: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        indices = self.describe(index)
        support_x = self.decode(self.read(indices.support_index), indices.support_y, indices)
        query_x = self.decode(self.read(indices.query_index), indices.query_y, indices)
        inputs = {"support_x": support_x, "support_y": indices.support_y, "query_x": query_x}
        return inputs, indices.query_y

    def describe(self, index: tf.Tensor) -> EpisodeIndices:
        """Draws the classes and example rows of meta-batch `index` (stage 1)."""
        if self.shape.variable:
            return self._describe_variable(index)
        b, n, k, q = self.meta_batch_size, self.ways, self.shots, self.queries
        key = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(index, tf.int64)])
        class_key, example_key, support_key, query_key = tf.unstack(
            tf.random.experimental.stateless_split(key, num=4, alg=_ALGORITHM)
        )
        # N distinct classes per episode; their random order is the label mapping.
        class_scores = tf.random.stateless_uniform([b, self.num_classes], class_key, alg=_ALGORITHM)
        classes = tf.math.top_k(class_scores, n).indices
        # K + Q distinct examples per class; masked scores keep picks inside small classes.
        example_scores = tf.random.stateless_uniform(
            [b, n, self.max_size], example_key, alg=_ALGORITHM
        )
        if not self.uniform_sizes:
            sizes = tf.gather(self._sizes, classes)[..., tf.newaxis]
            example_scores = tf.where(tf.range(self.max_size) < sizes, example_scores, -1.0)
        if self._query_pool is None:
            picks = tf.math.top_k(example_scores, k + q).indices
            rows = tf.gather(self._offsets, classes)[..., tf.newaxis] + picks
        else:  # Support from the class's pool, queries from its separate query pool.
            picks = tf.math.top_k(example_scores, k).indices
            rows = tf.concat([tf.gather(self._offsets, classes)[..., tf.newaxis] + picks,
                              self._query_rows(classes, example_key)], axis=-1)
        labels = tf.broadcast_to(tf.range(n, dtype=tf.int32)[:, tf.newaxis], [b, n, k + q])
        support_index, support_y = _shuffle(
            tf.reshape(rows[..., :k], [b, n * k]),
            tf.reshape(labels[..., :k], [b, n * k]),
            support_key,
        )
        query_index, query_y = _shuffle(
            tf.reshape(rows[..., k:], [b, n * q]),
            tf.reshape(labels[..., k:], [b, n * q]),
            query_key,
        )
        return EpisodeIndices(support_index, support_y, query_index, query_y, classes)

    def _query_rows(self, classes: tf.Tensor, example_key: tf.Tensor) -> tf.Tensor:
        """Q distinct rows of each class's separate query pool: `[B, N, Q]`."""
        offsets, sizes, largest = self._query_pool
        key = tf.random.experimental.stateless_fold_in(example_key, 1, alg=_ALGORITHM)
        scores = tf.random.stateless_uniform([*classes.shape, largest], key, alg=_ALGORITHM)
        scores = tf.where(tf.range(largest) < tf.gather(sizes, classes)[..., tf.newaxis],
                          scores, -1.0)
        picks = tf.math.top_k(scores, self.queries).indices
        return tf.gather(offsets, classes)[..., tf.newaxis] + picks

    def draw_sizes(self, index: tf.Tensor) -> EpisodeSizes:
        """The classes and sizes of the variable episodes of meta-batch `index`.

        Each rule of `tfmeta.data.episode_shape` is applied here, vectorised over the
        meta-batch, in float64 (as Meta-Dataset's NumPy code); the random draws are
        returned beside the sizes, so that a test can recompute the rules from them.
        """
        shape, b = self.shape, self.meta_batch_size
        width = shape.max_ways
        keys = tf.unstack(tf.random.experimental.stateless_split(
            self._key(index), num=4, alg=_ALGORITHM))
        ways_key, class_key, beta_key, weight_key = keys
        if shape.ways is None:
            ways = tf.random.stateless_uniform([b], ways_key, minval=MIN_WAYS, maxval=width + 1,
                                               dtype=tf.int32, alg=_ALGORITHM)
        else:
            ways = tf.fill([b], shape.ways)
        class_scores = tf.random.stateless_uniform([b, self.num_classes], class_key,
                                                   alg=_ALGORITHM)
        classes = tf.math.top_k(class_scores, width).indices  # [B, W]; slot j is label j.
        in_episode = tf.range(width)[tf.newaxis] < ways[:, tf.newaxis]
        sizes = tf.gather(self._sizes, classes)
        smallest = tf.reduce_min(tf.where(in_episode, sizes, self.max_size), axis=1)
        if shape.queries is not None:
            queries = tf.fill([b], shape.queries)
        elif shape.shots is None:
            queries = tf.minimum(shape.max_queries, smallest // 2)
        else:
            queries = tf.minimum(shape.max_queries, smallest - shape.shots)
        beta = tf.random.stateless_uniform([b], beta_key, dtype=tf.float64, alg=_ALGORITHM)
        log_weights = tf.random.stateless_uniform(
            [b, width], weight_key, minval=LOG_WEIGHT_RANGE[0], maxval=LOG_WEIGHT_RANGE[1],
            dtype=tf.float64, alg=_ALGORITHM)
        if shape.shots is not None:
            shots = tf.where(in_episode, shape.shots, 0)
            support_size = ways * shape.shots
        else:
            remaining = tf.cast(sizes - queries[:, tf.newaxis], tf.float64)
            per_class_cap = tf.constant(MAX_SUPPORT_PER_CLASS, tf.float64)
            contributions = tf.floor(
                beta[:, tf.newaxis] * tf.minimum(per_class_cap, remaining) + 1.0)
            zeros = tf.zeros_like(contributions)
            total = tf.reduce_sum(tf.where(in_episode, contributions, zeros), axis=1)
            support_size = tf.cast(
                tf.minimum(total, tf.constant(shape.max_support, tf.float64)), tf.int32)
            weights = tf.where(in_episode, tf.cast(sizes, tf.float64) * tf.exp(log_weights),
                               zeros)
            proportions = weights / tf.reduce_sum(weights, axis=1, keepdims=True)
            spare = tf.cast(support_size - ways, tf.float64)[:, tf.newaxis]
            desired = tf.cast(tf.floor(proportions * spare), tf.int32) + 1
            shots = tf.where(in_episode, tf.minimum(desired, sizes - queries[:, tf.newaxis]), 0)
        return EpisodeSizes(ways, classes, shots, queries, support_size, beta, log_weights)

    def _describe_variable(self, index: tf.Tensor) -> EpisodeIndices:
        """`describe` for variable episodes: sizes per episode, sets padded to the shape's."""
        shape, b = self.shape, self.meta_batch_size
        width, picks = shape.max_ways, shape.picks_per_class
        drawn = self.draw_sizes(index)
        keys = tf.unstack(tf.random.experimental.stateless_split(
            self._key(index), num=8, alg=_ALGORITHM))
        example_key, support_key, query_key = keys[4:7]
        example_scores = tf.random.stateless_uniform(
            [b, width, self.max_size], example_key, alg=_ALGORITHM)
        sizes = tf.gather(self._sizes, drawn.classes)[..., tf.newaxis]
        example_scores = tf.where(tf.range(self.max_size) < sizes, example_scores, -1.0)
        rows = (tf.gather(self._offsets, drawn.classes)[..., tf.newaxis]
                + tf.math.top_k(example_scores, picks).indices)  # [B, W, picks]
        labels = tf.broadcast_to(tf.range(width, dtype=tf.int32)[:, tf.newaxis],
                                 [b, width, picks])
        # The first q picks of a class are its queries, the next k_c its support examples.
        position = tf.range(picks)[tf.newaxis, tf.newaxis]
        queries = drawn.queries[:, tf.newaxis, tf.newaxis]
        in_episode = (tf.range(width)[tf.newaxis] < drawn.ways[:, tf.newaxis])[..., tf.newaxis]
        is_query = in_episode & (position < queries)
        is_support = (position >= queries) & (position < queries + drawn.shots[..., tf.newaxis])
        support_index, support_y = _padded_set(rows, labels, is_support, shape.support_size,
                                               support_key)
        query_index, query_y = _padded_set(rows, labels, is_query, shape.query_size, query_key)
        return EpisodeIndices(support_index, support_y, query_index, query_y, drawn.classes)

    def _key(self, index: tf.Tensor) -> tf.Tensor:
        return tf.stack([tf.constant(self.seed, tf.int64), tf.cast(index, tf.int64)])

    def read(self, rows: tf.Tensor) -> tf.Tensor:
        """Gathers the examples at `rows` (stage 2): `[B, M]` -> `[B, M, *example_shape]`."""
        return tf.gather(self._examples, rows)

    def decode(self, x: tf.Tensor, labels: tf.Tensor, indices: EpisodeIndices) -> tf.Tensor:
        """Rotates rotated classes and casts numbers to `float32` (stage 3); text stays text."""
        if self._turns is not None:
            turns = tf.gather(tf.gather(self._turns, indices.classes), tf.maximum(labels, 0),
                              batch_dims=1)
            x = rotate_quarter_turns(x, turns)
        if x.dtype != tf.string:
            x = tf.cast(x, tf.float32)
        if self.scale is not None:
            x = x * tf.constant(self.scale, tf.float32)
        if self.shape.variable:
            real = tf.reshape(labels >= 0, [*labels.shape, *[1] * len(self.example_shape)])
            x = tf.where(real, x, tf.zeros_like(x))
        return tf.ensure_shape(x, [self.meta_batch_size, labels.shape[1], *self.example_shape])


def _check_meta_batch_memory(examples, sizes, shape: EpisodeShape, meta_batch_size) -> None:
    """Refuses a meta-batch whose tensors (examples, indices, random scores) cannot fit."""
    per_example = int(np.prod(examples.shape[1:], dtype=np.int64)) * 4  # float32 out
    per_episode = (
        (shape.support_size + shape.query_size) * (per_example + 3 * 4)  # examples, labels...
        + int(sizes.shape[0]) * 4  # class scores
        + shape.max_ways * int(sizes.max()) * 4  # example scores
    )
    if shape.variable:  # Candidate entries of the compaction into padded sets.
        per_episode += 2 * shape.max_ways * shape.picks_per_class * 4 * 4
    arguments = {"meta_batch_size": meta_batch_size, "ways": shape.ways, "shots": shape.shots,
                 "queries": shape.queries}
    check_element_size(meta_batch_size * per_episode, arguments)


def _padded_set(rows: tf.Tensor, labels: tf.Tensor, chosen: tf.Tensor, size: int,
                key: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The `chosen` entries of `[B, W, picks]` rows and labels, shuffled, padded to `size`.

    Real entries come first in a random order, then padding (row 0, label -1).
    """
    b = rows.shape[0]
    rows, labels, chosen = (tf.reshape(t, [b, -1]) for t in (rows, labels, chosen))
    scores = tf.random.stateless_uniform(tf.shape(rows), key, alg=_ALGORITHM)
    order = tf.argsort(tf.where(chosen, scores, 2.0))[:, :size]  # Padding sorts last.
    real = tf.gather(chosen, order, batch_dims=1)
    rows = tf.where(real, tf.gather(rows, order, batch_dims=1), 0)
    labels = tf.where(real, tf.gather(labels, order, batch_dims=1), PADDING_LABEL)
    return rows, labels


def _shuffle(rows: tf.Tensor, labels: tf.Tensor, key: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Applies one random permutation per episode to `rows` and `labels` (`[B, M]`)."""
    order = tf.argsort(tf.random.stateless_uniform(tf.shape(rows), key, alg=_ALGORITHM))
    return tf.gather(rows, order, batch_dims=1), tf.gather(labels, order, batch_dims=1)
