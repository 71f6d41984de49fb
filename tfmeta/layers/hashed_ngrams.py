"""Sentences to TF-IDF vectors of hashed word and character n-grams: no word is unknown."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

# keras.layers.TextVectorization's "lower_and_strip_punctuation" (it strips "<" and ">",
# so the boundary marks below never occur inside a word).
_PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
WORD_START, WORD_END = "<", ">"


@keras.saving.register_keras_serializable(package="tfmeta")
class HashedNgrams(keras.layers.Layer):
    """Raw sentences `[batch]` to `[batch, num_buckets]` TF-IDF of hashed n-grams.

    A vocabulary learned from training sentences has no column for a word it never saw, so
    the sentences of a new domain lose most of their words. This layer hashes instead: a
    sentence is lower-cased and stripped of punctuation (`TextVectorization`'s default
    standardisation) and split on whitespace; its features are its word n-grams
    (n = 1..`word_ngrams`, joined by one space) and, for each word, the character n-grams
    (n in `char_ngrams`, fastText's subwords) of the word between boundary marks
    (`"<card>"` gives `"<ca"`, `"car"`, `"ard"`, `"rd>"` for n = 3). Each feature string
    goes to bucket `tf.strings.to_hash_bucket_fast(feature, num_buckets)` (FarmHash's
    64-bit fingerprint modulo `num_buckets`: the same in every process and on every
    platform), and the output counts each bucket's features times its idf.

    The idf is a non-trainable weight (saved with the model's weights): ones until
    `adapt(sentences)` sets it to scikit-learn's smoothed `ln((1 + D) / (1 + df)) + 1`
    over the `D` sentences, where `df` counts the sentences with a feature in the bucket.
    A bucket no training sentence reached gets the largest idf, `ln(1 + D) + 1`: an unseen
    word is treated as a rare, informative one, not dropped.

    Args:
        num_buckets: Columns of the output (hash buckets).
        word_ngrams: The longest word n-gram (0: none).
        char_ngrams: `(shortest, longest)` character n-gram of a marked word, or None for
            no character n-grams.
        **kwargs: Arguments of `keras.layers.Layer`.

    Example:
    >>> layer = HashedNgrams(num_buckets=64, word_ngrams=1, char_ngrams=None)
    >>> counts = layer(tf.constant(["card card lost"])).numpy()
    >>> sorted(counts[counts > 0].tolist())
    [1.0, 2.0]
    """

    def __init__(self, num_buckets: int = 2 ** 16, word_ngrams: int = 2,
                 char_ngrams: Sequence[int] | None = (3, 5), **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_buckets, bool) or not isinstance(num_buckets, int | np.integer) or (
                num_buckets < 1):
            raise ValueError("Invalid value for argument `num_buckets`: expected a positive "
                             f"integer. Received: num_buckets={num_buckets!r}")
        if isinstance(word_ngrams, bool) or not isinstance(word_ngrams, int | np.integer) or (
                word_ngrams < 0):
            raise ValueError("Invalid value for argument `word_ngrams`: expected a "
                             f"non-negative integer. Received: word_ngrams={word_ngrams!r}")
        if char_ngrams is not None:
            char_ngrams = tuple(char_ngrams)
            if len(char_ngrams) != 2 or not all(
                    isinstance(n, int | np.integer) and not isinstance(n, bool)
                    for n in char_ngrams) or not 1 <= char_ngrams[0] <= char_ngrams[1]:
                raise ValueError(
                    "Invalid value for argument `char_ngrams`: expected (shortest, longest) "
                    f"with 1 <= shortest <= longest, or None. Received: char_ngrams="
                    f"{char_ngrams!r}")
            char_ngrams = (int(char_ngrams[0]), int(char_ngrams[1]))
        if not word_ngrams and char_ngrams is None:
            raise ValueError("Invalid arguments: `word_ngrams=0` with `char_ngrams=None` "
                             "leaves no feature. Received: word_ngrams=0, char_ngrams=None")
        self.num_buckets = int(num_buckets)
        self.word_ngrams = int(word_ngrams)
        self.char_ngrams = char_ngrams
        self.idf = None

    def build(self, input_shape=None):
        self.idf = self.add_weight(shape=(self.num_buckets,), initializer="ones",
                                   trainable=False, name="idf")
        super().build(input_shape)

    def features(self, sentences: tf.Tensor) -> tf.RaggedTensor:
        """The feature strings `[batch, (features)]` of `[batch]` sentences (ragged)."""
        text = tf.strings.regex_replace(tf.strings.lower(sentences), _PUNCTUATION, "")
        words = tf.strings.split(text)
        parts = []
        if self.word_ngrams:
            parts.append(tf.strings.ngrams(words, list(range(1, self.word_ngrams + 1)),
                                           separator=" "))
        if self.char_ngrams is not None:
            marked = words.with_flat_values(
                tf.strings.join([WORD_START, words.flat_values, WORD_END]))
            characters = tf.strings.unicode_split(marked, "UTF-8")
            shortest, longest = self.char_ngrams
            grams = tf.strings.ngrams(characters, list(range(shortest, longest + 1)),
                                      separator="")
            parts.append(grams.merge_dims(1, 2))
        return tf.concat(parts, axis=1) if len(parts) > 1 else parts[0]

    def buckets(self, sentences: tf.Tensor) -> tf.RaggedTensor:
        """The bucket of every feature, `[batch, (features)]` int64 (ragged)."""
        return tf.strings.to_hash_bucket_fast(self.features(sentences), self.num_buckets)

    def call(self, sentences):
        sentences = tf.reshape(tf.convert_to_tensor(sentences, tf.string), [-1])
        buckets = self.buckets(sentences)
        rows = tf.cast(buckets.value_rowids(), tf.int64)
        batch = tf.shape(sentences, out_type=tf.int64)[0]
        counts = tf.math.unsorted_segment_sum(
            tf.ones_like(buckets.flat_values, dtype=self.compute_dtype),
            rows * self.num_buckets + buckets.flat_values, batch * self.num_buckets)
        counts = tf.reshape(counts, tf.stack([batch, self.num_buckets]))
        return counts * tf.cast(self.idf, self.compute_dtype)

    def adapt(self, sentences: Iterable[str], batch_size: int = 1024) -> None:
        """Sets the idf to the smoothed document frequencies of `sentences`' buckets.

        Args:
            sentences: The sentences (meta-training sentences only, never test intents').
            batch_size: Sentences hashed at a time.
        """
        sentences = list(sentences)
        if not sentences:
            raise ValueError("Invalid value for argument `sentences`: expected at least one "
                             "sentence. Received: 0 sentences")
        if not self.built:
            self.build((None,))
        document_frequency = np.zeros(self.num_buckets, np.int64)
        for start in range(0, len(sentences), batch_size):
            buckets = self.buckets(tf.constant(sentences[start:start + batch_size]))
            for row in buckets.to_list():
                document_frequency[np.unique(np.asarray(row, np.int64))] += 1
        documents = len(sentences)
        self.idf.assign(
            (np.log((1 + documents) / (1 + document_frequency)) + 1).astype(np.float32))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_buckets)

    def get_config(self):
        return {**super().get_config(), "num_buckets": self.num_buckets,
                "word_ngrams": self.word_ngrams,
                "char_ngrams": None if self.char_ngrams is None else list(self.char_ngrams)}
