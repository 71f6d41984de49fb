"""Vectorised, stateless sampling of a meta-batch of N-way K-shot episodes.

An `EpisodeSampler` turns a batch index into one meta-batch of episodes in three stages
that can each be tested on their own:

1. `describe`: which classes (N distinct per episode, in a random order that is the label
   mapping) and which examples (K + Q distinct per class) each episode uses, as indices.
2. `read`: one `tf.gather` from a single in-memory tensor holding every example.
3. `decode`: per-example quarter-turn rotation (for rotated classes), then `float32`;
   string examples (raw text) are passed through as `tf.string`.

All randomness is `tf.random.stateless_*` keyed on `(seed, batch index)`, so the batches
are a pure function of the seed and can be produced by a parallel `map` in any order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import check_element_size

_ALGORITHM = "philox"


class EpisodeIndices(NamedTuple):
    """Where a meta-batch of episodes reads its examples (the `describe` stage).

    Attributes:
        support_index: `[B, N*K]` int32 rows of the example tensor, shuffled.
        support_y: `[B, N*K]` int32 labels in `0..N-1`.
        query_index: `[B, N*Q]` int32 rows of the example tensor, shuffled.
        query_y: `[B, N*Q]` int32 labels in `0..N-1`.
        classes: `[B, N]` int32 class ids; label `j` of episode `b` is `classes[b, j]`.
    """

    support_index: tf.Tensor
    support_y: tf.Tensor
    query_index: tf.Tensor
    query_y: tf.Tensor
    classes: tf.Tensor


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
        sizes: `[C]` number of examples of each class (each >= shots + queries).
        ways: Classes per episode (N).
        shots: Support examples per class (K).
        queries: Query examples per class (Q).
        meta_batch_size: Episodes per batch (B).
        seed: Integer seed; batch `i` depends only on `(seed, i)`.
        turns: Optional `[C]` quarter turns (0..3) per class; examples must be square.
        scale: Optional factor applied after the cast to `float32` (e.g. 1/255).

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
    ) -> None:
        sizes = np.asarray(sizes, dtype=np.int32)
        _check_meta_batch_memory(examples, sizes, ways, shots, queries, meta_batch_size)
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

    def __call__(self, index: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        indices = self.describe(index)
        support_x = self.decode(self.read(indices.support_index), indices.support_y, indices)
        query_x = self.decode(self.read(indices.query_index), indices.query_y, indices)
        inputs = {"support_x": support_x, "support_y": indices.support_y, "query_x": query_x}
        return inputs, indices.query_y

    def describe(self, index: tf.Tensor) -> EpisodeIndices:
        """Draws the classes and example rows of meta-batch `index` (stage 1)."""
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
        picks = tf.math.top_k(example_scores, k + q).indices
        rows = tf.gather(self._offsets, classes)[..., tf.newaxis] + picks
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

    def read(self, rows: tf.Tensor) -> tf.Tensor:
        """Gathers the examples at `rows` (stage 2): `[B, M]` -> `[B, M, *example_shape]`."""
        return tf.gather(self._examples, rows)

    def decode(self, x: tf.Tensor, labels: tf.Tensor, indices: EpisodeIndices) -> tf.Tensor:
        """Rotates rotated classes and casts numbers to `float32` (stage 3); text stays text."""
        if self._turns is not None:
            turns = tf.gather(tf.gather(self._turns, indices.classes), labels, batch_dims=1)
            x = rotate_quarter_turns(x, turns)
        if x.dtype != tf.string:
            x = tf.cast(x, tf.float32)
        if self.scale is not None:
            x = x * tf.constant(self.scale, tf.float32)
        return tf.ensure_shape(x, [self.meta_batch_size, labels.shape[1], *self.example_shape])


def _check_meta_batch_memory(examples, sizes, ways, shots, queries, meta_batch_size) -> None:
    """Refuses a meta-batch whose tensors (examples, indices, random scores) cannot fit."""
    per_example = int(np.prod(examples.shape[1:], dtype=np.int64)) * 4  # float32 out
    per_episode = (
        ways * (shots + queries) * (per_example + 3 * 4)  # examples, labels, rows, order
        + int(sizes.shape[0]) * 4  # class scores
        + ways * int(sizes.max()) * 4  # example scores
    )
    check_element_size(
        meta_batch_size * per_episode,
        {"meta_batch_size": meta_batch_size, "ways": ways, "shots": shots, "queries": queries},
    )


def _shuffle(rows: tf.Tensor, labels: tf.Tensor, key: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Applies one random permutation per episode to `rows` and `labels` (`[B, M]`)."""
    order = tf.argsort(tf.random.stateless_uniform(tf.shape(rows), key, alg=_ALGORITHM))
    return tf.gather(rows, order, batch_dims=1), tf.gather(labels, order, batch_dims=1)
