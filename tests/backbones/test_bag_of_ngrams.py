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


# === Hashed word and character n-grams (words a vocabulary never saw) ===


def test_hashed_ngrams_give_unseen_words_features():
    encoder = bag_of_ngrams(SENTENCES, embedding_dim=8, hash_buckets=4096, seed=0)
    vocabulary_size = len(encoder.get_layer("tfidf_ngrams").get_vocabulary())
    x = tf.constant(["recipes for dinner", "recipe for dinner tonight", "top up my card"])
    embedding = encoder(x).numpy()
    assert embedding.shape == (3, vocabulary_size + 4096 + 8)
    vocab, hashed, projection = np.split(embedding, [vocabulary_size, vocabulary_size + 4096],
                                         axis=1)
    # No word of the first two sentences is in the vocabulary: its TF-IDF is zero, ...
    assert not vocab[:2].any() and np.linalg.norm(vocab[2]) == pytest.approx(1.0)
    # ... but the hashed n-grams and the projection of them are not.
    np.testing.assert_allclose(np.linalg.norm(hashed, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(projection, axis=1), 1.0, rtol=1e-5)
    # The hashed block is HashedNgrams' TF-IDF, normalised; "recipe"/"recipes" share
    # character n-grams, so the two unseen sentences are alike.
    layer = encoder.get_layer("hashed_ngrams")
    reference = layer(x).numpy()
    np.testing.assert_allclose(
        hashed, reference / np.linalg.norm(reference, axis=1, keepdims=True), rtol=1e-5)
    assert hashed[0] @ hashed[1] > 0.5 > hashed[0] @ hashed[2]
    # Its idf was adapted to the sentences: the buckets of "card" (in two of three) weigh
    # less than those no sentence reached.
    idf = layer.idf.numpy()
    assert idf.max() == pytest.approx(math.log(4) + 1) and idf.min() < idf.max()


def test_hashed_encoder_saves_and_exports(tmp_path):
    import tfmeta

    encoder = bag_of_ngrams(SENTENCES, embedding_dim=8, hash_buckets=256, seed=0)
    encoder.save(tmp_path / "encoder.keras")
    reloaded = keras.models.load_model(tmp_path / "encoder.keras")
    x = tf.constant(["top up my card", "unseen words here"])
    np.testing.assert_allclose(reloaded(x).numpy(), encoder(x).numpy(), atol=1e-6)
    learner = tfmeta.ProtoNet(encoder, distance="cosine")
    learner.export(tmp_path / "sm")
    served = tf.saved_model.load(str(tmp_path / "sm"))
    support_x, support_y = tf.constant(["top up", "lost card"]), tf.constant([0, 1])
    query_x = tf.constant(["topping up", "my card got lost"])
    logits = served.signatures["serving_default"](
        support_x=support_x, support_y=support_y, query_x=query_x)["logits"].numpy()
    state = served.signatures["adapt"](support_x=support_x, support_y=support_y)["task_state"]
    adapted = served.signatures["predict_adapted"](task_state=state, query_x=query_x)
    np.testing.assert_allclose(adapted["logits"].numpy(), logits, rtol=1e-5, atol=1e-6)
    episode = {"support_x": support_x[None], "support_y": support_y[None],
               "query_x": query_x[None]}
    np.testing.assert_allclose(logits, learner.predict_on_batch(episode)[0], rtol=1e-5,
                               atol=1e-5)
    # LiteRT has no string ops: refused in one line before any conversion.
    with pytest.raises(ValueError) as caught:
        learner.export_litert(tmp_path / "m.tflite")
    assert "HashedNgrams" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "m.tflite").exists()


def test_bad_hash_buckets():
    with pytest.raises(ValueError, match=r"`hash_buckets`.*hash_buckets=0"):
        bag_of_ngrams(SENTENCES, hash_buckets=0)
    with pytest.raises(ValueError, match=r"`char_ngrams`"):
        bag_of_ngrams(SENTENCES, hash_buckets=8, char_ngrams=(0, 2))
