"""Prototypical-network logits: distances from queries to class prototypes."""

import keras
import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import is_integer

DISTANCES = ("squared_euclidean", "cosine")


@keras.saving.register_keras_serializable(package="tfmeta")
class PrototypeLogits(keras.layers.Layer):
    """Logits of query embeddings against the per-class mean of support embeddings.

    Prototypes are the means of the support embeddings of each class (the
    support labels may come in any order). With
    `distance="squared_euclidean"` the logits are minus the squared Euclidean
    distance to each prototype (Snell et al., 2017); with `distance="cosine"`
    they are `scale` times the cosine similarity, where `scale` is fixed or
    learned (`learn_scale=True`).

    The number of ways `N` is `ways` when given, else `max(support_labels) + 1`
    computed at run time. XLA (`jit_compile=True`) needs static shapes, so give
    `ways` there.

    Padded episodes (variable ways and shots): support labels -1 are left out of
    the prototypes; the classes a padded episode does not have (from its
    `max(support_labels) + 1` on, when a meta-batch mixes episodes of different
    ways or `ways` exceeds them) get a zero prototype, and `tfmeta.ProtoNet`
    sets their logits to -inf (`tfmeta.learners.padding.mask_absent_classes`).

    Input checks: ranks are checked when the layer is called. Labels outside
    `0..N-1` and classes without a support example raise a `ValueError` when
    running eagerly, and a `tf.errors.InvalidArgumentError` with the same
    message inside a `tf.function` (e.g. `fit`, `predict`); under XLA the
    run-time checks are compiled away, so such episodes give meaningless logits
    (NaN for an empty class).

    Args:
        ways: number of classes per episode, or None to derive it from the labels.
        distance: `"squared_euclidean"` or `"cosine"`.
        scale: the initial (or fixed) multiplier of cosine similarities.
        learn_scale: whether the cosine scale is a trainable weight.
        **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
        support_embeddings: `[B, S, D]` (or `[S, D]` for one episode).
        support_labels: `[B, S]` (or `[S]`) integer labels in `0..N-1`.
        query_embeddings: `[B, Q, D]` (or `[Q, D]`).

    Returns:
        Logits `[B, Q, N]` (or `[Q, N]`).

    Example:
    >>> import numpy as np
    >>> layer = PrototypeLogits(ways=2)
    >>> support = np.array([[[0.0, 0.0], [2.0, 2.0]]], "float32")
    >>> logits = layer(support, np.array([[0, 1]]), np.array([[[0.0, 1.0]]], "float32"))
    >>> np.asarray(logits).tolist()
    [[[-1.0, -5.0]]]

    """

    def __init__(self, ways=None, distance="squared_euclidean", scale=10.0, learn_scale=False,
                 **kwargs):
        super().__init__(**kwargs)
        if distance not in DISTANCES:
            raise ValueError(
                f"Invalid value for argument `distance`: expected one of {DISTANCES}. "
                f"Received: distance={distance!r}"
            )
        if ways is not None and (not is_integer(ways) or ways < 1):
            raise ValueError(
                "Invalid value for argument `ways`: expected a positive integer or None. "
                f"Received: ways={ways!r}"
            )
        self.ways = None if ways is None else int(ways)
        self.distance = distance
        self.scale = float(scale)
        self.learn_scale = bool(learn_scale)
        self._scale_weight = None
        if distance == "cosine" and learn_scale:
            self._scale_weight = self.add_weight(
                shape=(), initializer=keras.initializers.Constant(self.scale), name="scale"
            )

    def call(self, support_embeddings, support_labels, query_embeddings):
        support_embeddings = tf.convert_to_tensor(support_embeddings)
        query_embeddings = tf.convert_to_tensor(query_embeddings, dtype=support_embeddings.dtype)
        support_labels = tf.convert_to_tensor(support_labels)
        single_episode = support_embeddings.shape.rank == 2
        self._check_ranks(support_embeddings, support_labels, query_embeddings)
        if single_episode:
            support_embeddings = support_embeddings[None]
            support_labels = support_labels[None]
            query_embeddings = query_embeddings[None]
        prototypes = self.prototypes(support_embeddings, support_labels)
        logits = self.logits(prototypes, query_embeddings)
        return logits[0] if single_episode else logits

    def prototypes(self, support_embeddings, support_labels, classes_from_labels=False):
        """Class prototypes `[B, N, D]`: the mean support embedding `[B, S, D]` of each class.

        Labels `[B, S]` are checked as in `call`; with `classes_from_labels`, every episode
        (padded or not) has the classes `0..max(labels)`, each with a support example, and
        the classes above get a zero prototype (Proto-MAML's head wider than an episode).
        """
        support_labels = tf.cast(support_labels, tf.int32)
        ways = self.ways
        if ways is None:
            ways = tf.reduce_max(support_labels) + 1
        if tf.executing_eagerly():
            self._check_labels(support_labels.numpy(), ways, classes_from_labels)
        # A padded label (-1) has an all-zero one-hot row: it joins no prototype.
        one_hot = tf.one_hot(support_labels, ways, dtype=support_embeddings.dtype)  # [B, S, N]
        counts = tf.reduce_sum(one_hot, axis=1)  # [B, N]
        if not tf.executing_eagerly():
            counts = self._assert_valid_labels(support_labels, ways, counts, classes_from_labels)
        prototypes = tf.einsum("bsn,bsd->bnd", one_hot, support_embeddings)
        return tf.math.divide_no_nan(prototypes, counts[..., None])

    def logits(self, prototypes, query_embeddings):
        """Logits `[B, Q, N]` of query embeddings `[B, Q, D]` against prototypes `[B, N, D]`."""
        if self.distance == "cosine":
            queries = tf.math.l2_normalize(query_embeddings, axis=-1)
            prototypes = tf.math.l2_normalize(prototypes, axis=-1)
            scale = self._scale_weight if self._scale_weight is not None else self.scale
            return scale * tf.einsum("bqd,bnd->bqn", queries, prototypes)
        # |q - p|^2 = |q|^2 - 2 q.p + |p|^2, as matrix products.
        query_norms = tf.reduce_sum(tf.square(query_embeddings), axis=-1, keepdims=True)
        prototype_norms = tf.reduce_sum(tf.square(prototypes), axis=-1)[:, None, :]
        cross = tf.einsum("bqd,bnd->bqn", query_embeddings, prototypes)
        return -(query_norms - 2.0 * cross + prototype_norms)

    @staticmethod
    def _check_ranks(support_embeddings, support_labels, query_embeddings):
        rank = support_embeddings.shape.rank
        if rank not in (2, 3):
            raise ValueError(
                "Invalid `support_embeddings`: expected shape [tasks, support, features] "
                f"(rank 3) or [support, features]. Received: shape={support_embeddings.shape}"
            )
        if query_embeddings.shape.rank != rank:
            raise ValueError(
                f"Invalid `query_embeddings`: expected rank {rank} like `support_embeddings` "
                f"(shape {support_embeddings.shape}). Received: shape={query_embeddings.shape}"
            )
        if support_labels.shape.rank != rank - 1:
            raise ValueError(
                f"Invalid `support_labels`: expected rank {rank - 1} (one label per support "
                f"embedding of shape {support_embeddings.shape}). Received: "
                f"shape={support_labels.shape}"
            )
        if not support_labels.shape.is_compatible_with(support_embeddings.shape[:-1]):
            raise ValueError(
                "Invalid `support_labels`: expected one label per support embedding, shape "
                f"{support_embeddings.shape[:-1]}. Received: shape={support_labels.shape}"
            )

    @staticmethod
    def _assert_valid_labels(labels, ways, counts, classes_from_labels=False):
        """Adds run-time checks (InvalidArgumentError) with the messages of `_check_labels`."""
        # A padded episode (some label -1) may lack the classes above its largest label.
        episode_ways = tf.reduce_max(labels, axis=-1, keepdims=True) + 1  # [B, 1]
        padded = tf.reduce_any(labels < 0, axis=-1, keepdims=True) | classes_from_labels
        in_episode = tf.logical_or(tf.range(tf.shape(counts)[-1]) < episode_ways,
                                   tf.logical_not(padded))
        checks = [
            tf.debugging.assert_greater_equal(
                labels, tf.constant(-1, labels.dtype),
                message="Invalid `support_labels`: expected integers in 0..ways-1 (-1: padding)"),
            tf.debugging.assert_less(
                labels, tf.cast(ways, labels.dtype),
                message="Invalid `support_labels`: expected integers in 0..ways-1"),
            tf.debugging.Assert(
                tf.reduce_all(tf.logical_or(counts > 0, tf.logical_not(in_episode))),
                ["Invalid `support_labels`: every class needs a support example"]),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(counts)

    @staticmethod
    def _check_labels(labels: np.ndarray, ways, classes_from_labels=False) -> None:
        ways = int(ways)
        if labels.min() < -1 or labels.max() >= ways:
            raise ValueError(
                f"Invalid `support_labels`: expected integers in 0..{ways - 1} (ways={ways}). "
                f"Received labels from {labels.min()} to {labels.max()}"
            )
        for episode, row in enumerate(labels):
            # A padded episode (some label -1) lacks the classes above its largest label.
            expected = int(row.max()) + 1 if row.min() < 0 or classes_from_labels else ways
            missing = sorted(set(range(expected)) - set(row.tolist()))
            if missing:
                raise ValueError(
                    f"Invalid `support_labels`: every class needs a support example, but episode "
                    f"{episode} has none for classes {missing} (ways={ways})"
                )

    def get_config(self):
        return {
            **super().get_config(),
            "ways": self.ways,
            "distance": self.distance,
            "scale": self.scale,
            "learn_scale": self.learn_scale,
        }
