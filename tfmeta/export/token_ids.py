"""Text models on the device: token ids in, the vocabulary beside the `.tflite` file.

LiteRT's builtin ops have no string ops: a model that begins with
`keras.layers.TextVectorization` needs `StringLower`, `StaticRegexReplace`,
`StringSplitV2`, `StringNGrams` and a hash-table look-up, which only Flex kernels run.
So the device model takes the sentences' token ids instead, and the app turns a sentence
into ids itself: standardise it (the vectorizer's `standardize`, e.g. lower-case and strip
punctuation), split it (`split`, e.g. on whitespace), add the word n-grams (`ngrams`,
joined by one space), and look each token up in the vocabulary file (one token a line;
the id is the line number from 0; a token not in the file is `[UNK]`'s id; `-1` pads a
sentence's ids to the longest of its batch). `tokenize` is that recipe in Python, and
`tfmeta.layers.TokenBag` rebuilds the vectorizer's output from the ids inside the model.

One difference is LiteRT's, not the ids': a sentence of unknown words only has a zero
TF-IDF vector, which `keras.layers.UnitNormalization` maps to zeros in TensorFlow but to
NaN under XNNPACK, the interpreter's default CPU delegate (`0 * rsqrt(0)`); an app should
treat such a sentence as unknown.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfmeta.layers.hashed_ngrams import HashedNgrams
from tfmeta.layers.token_bag import TokenBag

PADDING = -1
_PORTABLE = {"standardize": ("lower_and_strip_punctuation", "lower", "strip_punctuation", None),
             "split": ("whitespace", "character", None)}


def text_vectorizer(model: keras.Model) -> keras.layers.TextVectorization | None:
    """The model's `TextVectorization` layer when its input is strings, else None."""
    layers = [layer for layer in model._flatten_layers(include_self=False)
              if isinstance(layer, keras.layers.TextVectorization)]
    if not layers:
        return None
    if len(layers) > 1:
        raise ValueError(
            f"Cannot export a text model on token ids: {model.name!r} has {len(layers)} "
            "TextVectorization layers; expected one. Received: "
            f"{[layer.name for layer in layers]}")
    return layers[0]


def token_id_model(model: keras.Model) -> tuple[keras.Model, list[str]]:
    """`(model on token ids, vocabulary)` for a functional model on raw sentences.

    The returned model takes `[batch, L]` int32 ids (`-1` pads, L any length) and shares
    every layer after the vectorizer with `model` (the same weights); the vocabulary is
    the vectorizer's, so that `returned(tokenize(sentences, vectorizer)) ==
    model(sentences)`.

    Raises:
        ValueError: for a model without exactly one `TextVectorization` layer, or one whose
            standardisation or splitting is a Python function an app cannot reproduce.
    """
    hashed = [layer.name for layer in model._flatten_layers(include_self=False)
              if isinstance(layer, HashedNgrams)]
    if hashed:
        raise ValueError(
            f"Cannot export {model.name!r} to LiteRT: its HashedNgrams layer {hashed[0]!r} "
            "hashes strings (string n-grams, to_hash_bucket_fast), which are no LiteRT "
            "builtin ops; export it as a SavedModel (learner.export) or build the encoder "
            "without hash_buckets.")
    vectorizer = text_vectorizer(model)
    if vectorizer is None:
        raise ValueError(f"Cannot export on token ids: {model.name!r} has no TextVectorization "
                         "layer.")
    config = vectorizer.get_config()
    for option, portable in _PORTABLE.items():
        if config[option] not in portable:
            raise ValueError(
                f"Cannot export {model.name!r} on token ids: its TextVectorization "
                f"{option}={config[option]!r} is a function the app cannot reproduce; expected "
                f"one of {portable}.")
    mode = config["output_mode"]
    vocabulary = [str(token) for token in vectorizer.get_vocabulary()]
    idf = None
    if mode == "tf_idf":
        idf = vectorizer._lookup_layer.idf_weights.numpy()
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    bag = TokenBag(len(vocabulary), output_mode=mode, idf_weights=idf,
                   name=f"{vectorizer.name}_from_ids")
    rest = keras.Model(vectorizer.output, model.outputs[0])
    # The layers after the vectorizer called again on the bag (not a nested model), so
    # that the output layer stays the model's own (e.g. the head ANIL adapts).
    outputs = rest._run_through_graph(bag(ids), operation_fn=lambda layer: layer)
    return keras.Model(ids, outputs, name=f"{model.name}_on_token_ids"), vocabulary


def tokenize(sentences: Sequence[str], vectorizer: Any,
             vocabulary: Sequence[str] | None = None) -> np.ndarray:
    """The token ids `[len(sentences), L]` int32 of sentences, `-1` padding (the app's recipe).

    Args:
        sentences: raw sentences.
        vectorizer: the model's `TextVectorization`, or its `vectorizer_description`
            (the `"tokens"` entry of a `.tflite` file's tfmeta metadata).
        vocabulary: the vocabulary file's tokens (default: the vectorizer's).

    Example:
    >>> layer = keras.layers.TextVectorization(vocabulary=["my", "card"], output_mode="count")
    >>> tokenize(["My card!", "card"], layer).tolist()
    [[1, 2], [2, -1]]
    """
    if isinstance(vectorizer, keras.layers.TextVectorization):
        vocabulary = vocabulary or vectorizer.get_vocabulary()
        vectorizer = vectorizer_description(vectorizer)
    config = vectorizer
    if vocabulary is None:
        raise ValueError("Invalid value for argument `vocabulary`: expected the vocabulary's "
                         "tokens with a vectorizer description. Received: vocabulary=None")
    vocabulary = [str(t) for t in vocabulary]
    if isinstance(sentences, str):
        raise ValueError("Invalid value for argument `sentences`: expected a sequence of "
                         f"sentences, not one string. Received: sentences={sentences[:40]!r}")
    # In "int" mode Keras puts "" (padding, id 0) and "[UNK]" (id 1) first; the bag modes
    # put only "[UNK]" first (id 0). The look-up layer below always adds both.
    first = 2 if config["output_mode"] == "int" else 1
    lookup = keras.layers.TextVectorization(
        output_mode="int", vocabulary=vocabulary[first:],
        ngrams=tuple(config["ngrams"]) if isinstance(config["ngrams"], list) else config["ngrams"],
        standardize=config["standardize"], split=config["split"])
    ids = np.asarray(lookup(tf.constant(list(sentences)))).astype(np.int32)
    ids = ids - (1 if first == 1 else 0)  # bag modes: [UNK] at 0, padding -1
    ids[ids == (-1 if first == 1 else 0)] = PADDING
    return ids


def write_vocabulary(path: str | os.PathLike, vocabulary: Sequence[str]) -> None:
    """Writes the vocabulary file: one token a line, the id is the line number from 0."""
    tokens = [str(token) for token in vocabulary]
    bad = [t for t in tokens if "\n" in t]
    if bad:
        raise ValueError(f"Cannot write the vocabulary: token {bad[0]!r} holds a line break.")
    with open(path, "w", encoding="utf-8") as file:
        file.write("\n".join(tokens) + "\n")


def read_vocabulary(path: str | os.PathLike) -> list[str]:
    """The tokens of a vocabulary file written by `write_vocabulary`."""
    with open(path, encoding="utf-8") as file:
        return file.read().split("\n")[:-1]


def vectorizer_description(vectorizer: keras.layers.TextVectorization) -> dict[str, Any]:
    """What the app needs to tokenise like `vectorizer` (stored in the `.tflite` metadata)."""
    config = vectorizer.get_config()
    ngrams = config["ngrams"]
    return {"standardize": config["standardize"], "split": config["split"],
            "ngrams": list(ngrams) if isinstance(ngrams, (tuple, list)) else ngrams,
            "output_mode": config["output_mode"], "padding": PADDING}


def token_id_learner(learner: Any) -> tuple[Any, list[str], keras.layers.TextVectorization]:
    """`(learner on token ids, vocabulary, vectorizer)`: the same learner and weights.

    The learner is rebuilt from its config with the example model (`learner.example_model`)
    replaced by `token_id_model`'s, its weights copied and its compile configuration reused.
    """
    model = learner.example_model
    vectorizer = text_vectorizer(model)
    id_model, vocabulary = token_id_model(model)
    config = learner.get_config()
    serialized = keras.saving.serialize_keras_object(model)
    keys = [key for key, value in config.items() if value == serialized]
    if len(keys) != 1:
        raise ValueError(
            f"Cannot export {type(learner).__name__} on token ids: its config does not name "
            "its example model once.")
    clone = type(learner).from_config(
        {**config, keys[0]: keras.saving.serialize_keras_object(id_model)})
    weights = learner.get_weights()
    if [w.shape for w in clone.get_weights()] != [w.shape for w in weights]:
        raise ValueError(
            f"Cannot export {type(learner).__name__} on token ids: the rebuilt learner's "
            "weights do not match the learner's.")
    clone.set_weights(weights)
    if learner.compiled:
        clone.compile_from_config(learner.get_compile_config())
    return clone, vocabulary, vectorizer
