"""Text models on LiteRT: token ids in, the vocabulary file beside, the same outputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmeta
from tfmeta.export import LiteRTLearner, read_vocabulary, token_id_model, tokenize
from tfmeta.export.token_ids import text_vectorizer

pytest.importorskip("ai_edge_litert")

SENTENCES = ["Top up my card!", "my card is lost", "where is my money?", "the card was eaten",
             "money never arrived", "top up failed"]
EPISODE = (["my card, TOP up", "where's the money", "lost my card", "card eaten again",
            "top up please", "money missing"], np.array([0, 1, 2, 2, 0, 1], np.int32),
           ["is my card lost", "top up now", "never got money", "money top"])
# A sentence of unknown words only (or an empty one) has a zero TF-IDF vector, which Keras'
# UnitNormalization maps to zeros in TensorFlow but to NaN under XNNPACK, LiteRT's default
# CPU delegate (RSQRT(0) = inf times 0); the token-id models agree on them in TensorFlow.
UNKNOWN = ["unknown words here", ""]


def vectorizing_model(mode):
    keras.utils.set_random_seed(0)
    vectorizer = keras.layers.TextVectorization(output_mode=mode, ngrams=2)
    vectorizer.adapt(tf.constant(SENTENCES))
    inputs = keras.Input((), dtype="string")
    x = vectorizer(inputs)
    if mode == "int":
        x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(
            vectorizer.vocabulary_size(), 4)(x))
    return keras.Model(inputs, keras.layers.Dense(3)(x))


@pytest.mark.parametrize("mode", ["tf_idf", "count", "multi_hot", "int"])
def test_the_token_id_model_equals_the_string_model(mode):
    model = vectorizing_model(mode)
    id_model, vocabulary = token_id_model(model)
    sentences = EPISODE[0] + EPISODE[2] + UNKNOWN
    ids = tokenize(sentences, text_vectorizer(model))
    assert ids.dtype == np.int32 and ids.min() >= -1 and ids.max() < len(vocabulary)
    np.testing.assert_allclose(id_model(ids), model(tf.constant(sentences)), atol=1e-6)
    assert id_model.get_weights()[0] is not None  # shares the layers after the vectorizer
    assert all(a is b for a, b in zip(id_model.weights, model.weights))


def test_a_text_protonet_runs_on_token_ids_with_the_vocabulary_beside(tmp_path):
    encoder = tfmeta.backbones.bag_of_ngrams(SENTENCES, embedding_dim=8, seed=0)
    learner = tfmeta.ProtoNet(encoder, distance="cosine", learn_cosine_scale=True)
    learner.prototype_logits.weights[0].assign(7.0)  # a trained scale must travel along
    learner.export_litert(tmp_path / "intents.tflite")
    vocabulary = read_vocabulary(tmp_path / "intents.vocabulary.txt")
    assert vocabulary == [str(t) for t in text_vectorizer(encoder).get_vocabulary()]

    device = LiteRTLearner(tmp_path / "intents.tflite")
    assert device.tokens["vocabulary_file"] == "intents.vocabulary.txt"
    support_x, support_y, query_x = EPISODE
    expected = learner.predict_on_batch({"support_x": tf.constant([support_x]),
                                         "support_y": support_y[None],
                                         "query_x": tf.constant([query_x])})[0]
    np.testing.assert_allclose(device(support_x, support_y, query_x), expected, atol=1e-5)
    # What an app does: its own ids from the vocabulary file and the recipe.
    ids = tokenize(support_x, device.tokens, vocabulary)
    state = device.adapt(ids, support_y)
    np.testing.assert_allclose(device.predict_adapted(state, query_x), expected, atol=1e-5)


@pytest.mark.slow
def test_a_text_anil_runs_on_token_ids(tmp_path):
    model = tfmeta.backbones.bag_of_ngrams(SENTENCES, embedding_dim=8, num_classes=3, seed=0)
    learner = tfmeta.MAML(model, adapt_layers=["logits"], inner_learning_rate=0.5,
                          eval_inner_steps=3)
    learner.compile(optimizer="adam",
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    learner.export_litert(tmp_path / "anil.tflite")
    support_x, support_y, query_x = EPISODE
    expected = learner.predict_on_batch({"support_x": tf.constant([support_x]),
                                         "support_y": support_y[None],
                                         "query_x": tf.constant([query_x])})[0]
    got = LiteRTLearner(tmp_path / "anil.tflite")(support_x, support_y, query_x)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_python_standardize_function_is_refused():
    vectorizer = keras.layers.TextVectorization(standardize=lambda x: tf.strings.lower(x),
                                                output_mode="count")
    vectorizer.adapt(tf.constant(SENTENCES))
    inputs = keras.Input((), dtype="string")
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.ops.cast(vectorizer(inputs),
                                                                     "float32")))
    with pytest.raises(ValueError, match="standardize=.*cannot reproduce"):
        token_id_model(model)
