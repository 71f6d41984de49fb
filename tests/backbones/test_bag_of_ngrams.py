"""The bag_of_ngrams text encoder: TF-IDF against a hand-derived reference, saving, errors."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmeta.backbones import bag_of_ngrams, ngram_vectorizer

SENTENCES = ["Top up my card", "my card is lost!", "top up failed"]


def reference_tfidf(vocabulary, sentence):
    """Counts of the sentence's uni- and bigrams times Keras' idf, log(1 + D / (1 + df))."""
    def grams(text):
        words = "".join(c for c in text.lower() if c.isalnum() or c == " ").split()
        return words + [" ".join(words[i:i + 2]) for i in range(len(words) - 1)]

    documents = [set(grams(s)) for s in SENTENCES]
    out = np.zeros(len(vocabulary))
    for gram in grams(sentence):
        if gram in vocabulary[1:]:
            column = vocabulary.index(gram)
            df = sum(gram in d for d in documents)
            out[column] += math.log(1 + len(SENTENCES) / (1 + df))
    return out


def test_tfidf_of_uni_and_bigrams_with_unknown_ngrams_weighted_zero():
    layer = ngram_vectorizer(SENTENCES)
    vocabulary = layer.get_vocabulary()
    assert vocabulary[0] == "[UNK]" and {"top up", "my card", "lost"} <= set(vocabulary)
    assert len(vocabulary) == 1 + len({g for s in SENTENCES for g in _grams(s)})
    for sentence in ("top up my card my card", "never seen words", "card is lost"):
        got = layer(tf.constant([sentence])).numpy()[0]
        np.testing.assert_allclose(got, reference_tfidf(vocabulary, sentence), rtol=1e-5)
        assert got[0] == 0.0


def _grams(sentence):
    words = "".join(c for c in sentence.lower() if c.isalnum() or c == " ").split()
    return words + [" ".join(words[i:i + 2]) for i in range(len(words) - 1)]


def test_embedding_is_normalised_tfidf_and_projection():
    encoder = bag_of_ngrams(SENTENCES, embedding_dim=16, seed=0)
    embedding = encoder(tf.constant(["top up my card", "lost card"])).numpy()
    vocabulary_size = len(encoder.get_layer("tfidf_ngrams").get_vocabulary())
    assert embedding.shape == (2, vocabulary_size + 16)
    tfidf, projection = embedding[:, :vocabulary_size], embedding[:, vocabulary_size:]
    np.testing.assert_allclose(np.linalg.norm(tfidf, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(projection, axis=1), 1.0, rtol=1e-5)
    reference = reference_tfidf(encoder.get_layer("tfidf_ngrams").get_vocabulary(),
                                "top up my card")
    np.testing.assert_allclose(tfidf[0], reference / np.linalg.norm(reference), rtol=1e-5)
    assert bag_of_ngrams(SENTENCES, embedding_dim=4, keep_tfidf=False).output_shape == (None, 4)
    assert bag_of_ngrams(SENTENCES, num_classes=5).output_shape == (None, 5)


def test_the_vocabulary_travels_in_the_saved_model_file(tmp_path):
    encoder = bag_of_ngrams(SENTENCES, embedding_dim=8, dropout=0.1, seed=0)
    encoder.save(tmp_path / "encoder.keras")
    assert [p.name for p in tmp_path.iterdir()] == ["encoder.keras"]
    reloaded = keras.models.load_model(tmp_path / "encoder.keras")
    x = tf.constant(["top up my card", "what is this"])
    np.testing.assert_allclose(reloaded(x).numpy(), encoder(x).numpy(), atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"`sentences`.*not one string"):
        bag_of_ngrams("top up my card")
    with pytest.raises(ValueError, match=r"`sentences`.*positions \[1\] are empty"):
        bag_of_ngrams(["top up", "  "])
    with pytest.raises(ValueError, match=r"`embedding_dim`"):
        bag_of_ngrams(SENTENCES, embedding_dim=0)
    with pytest.raises(ValueError, match=r"`num_classes`"):
        bag_of_ngrams(SENTENCES, num_classes=0)
