"""HashedNgrams: features and buckets of a small sentence by hand, idf, saving, processes."""

import math
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmeta.layers.hashed_ngrams import HashedNgrams

# "Top up, card!" lower-cased, punctuation stripped: the words "top", "up", "card".
HAND_FEATURES = [
    "top", "up", "card", "top up", "up card",  # word uni- and bigrams
    "<to", "top", "op>", "<top", "top>",  # "<top>": 3- and 4-grams
    "<up", "up>", "<up>",  # "<up>"
    "<ca", "car", "ard", "rd>", "<car", "card", "ard>",  # "<card>"
]


def farmhash_bucket(feature: str, buckets: int) -> int:
    """FarmHash Fingerprint64 (tf.fingerprint's 8 little-endian bytes) modulo `buckets`."""
    digest = tf.fingerprint(tf.constant([feature]), method="farmhash64").numpy()[0]
    return int.from_bytes(bytes(digest), "little") % buckets


def test_features_of_a_small_sentence_by_hand():
    layer = HashedNgrams(num_buckets=1000, word_ngrams=2, char_ngrams=(3, 4))
    features = layer.features(tf.constant(["Top up, card!"])).to_list()[0]
    assert sorted(f.decode() for f in features) == sorted(HAND_FEATURES)


def test_counts_are_the_hand_computed_buckets():
    buckets = 1000
    layer = HashedNgrams(num_buckets=buckets, word_ngrams=2, char_ngrams=(3, 4))
    expected = np.zeros(buckets)
    for feature in HAND_FEATURES:
        expected[farmhash_bucket(feature, buckets)] += 1
    got = layer(tf.constant(["Top up, card!"])).numpy()
    np.testing.assert_array_equal(got[0], expected)
    assert got.sum() == len(HAND_FEATURES)


def test_idf_is_smoothed_and_largest_for_unseen_buckets():
    buckets = 50_000  # no collision among these few features
    layer = HashedNgrams(num_buckets=buckets, word_ngrams=1, char_ngrams=None)
    layer.adapt(["my card", "card lost", "top up"])
    idf = layer.idf.numpy()
    card, my, never = (farmhash_bucket(w, buckets) for w in ("card", "my", "recipe"))
    np.testing.assert_allclose(idf[card], math.log(4 / 3) + 1, rtol=1e-6)
    np.testing.assert_allclose(idf[my], math.log(4 / 2) + 1, rtol=1e-6)
    np.testing.assert_allclose(idf[never], math.log(4) + 1, rtol=1e-6)
    # An unseen word gets non-zero features, weighted like the rarest word.
    out = layer(tf.constant(["recipe recipe card"])).numpy()[0]
    assert out[never] == pytest.approx(2 * (math.log(4) + 1))
    assert out[card] == pytest.approx(math.log(4 / 3) + 1)
    assert np.count_nonzero(out) == 2


def test_unseen_word_gets_character_features_shared_with_its_inflection():
    layer = HashedNgrams(num_buckets=2 ** 16)
    layer.adapt(["top up my card"])
    transferred, transfers = layer(tf.constant(["transferred", "transfers"])).numpy()
    assert np.count_nonzero(transferred) > 5 and np.count_nonzero(transfers) > 5
    cosine = transferred @ transfers / np.linalg.norm(transferred) / np.linalg.norm(transfers)
    assert 0.3 < cosine < 1.0  # "<tr", "tra", ..., "transfer" in common


def test_the_same_buckets_in_another_process():
    code = ("import tensorflow as tf; from tfmeta.layers.hashed_ngrams import HashedNgrams; "
            "print(HashedNgrams(997).buckets(tf.constant(['Top up, card!'])).to_list())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, timeout=120).stdout.strip().splitlines()[-1]
    here = HashedNgrams(997).buckets(tf.constant(["Top up, card!"])).to_list()
    assert other == str(here)
    # Pinned (TF 2.21): a saved model's buckets must not move between versions.
    assert HashedNgrams(997, char_ngrams=None).buckets(
        tf.constant(["card", "top up"])).to_list() == [[250], [679, 662, 589]]


def test_empty_sentence_and_shapes():
    layer = HashedNgrams(num_buckets=8, char_ngrams=(2, 3))
    out = layer(tf.constant(["", "a b"]))
    assert out.shape == (2, 8) and float(tf.reduce_sum(out[0])) == 0.0
    assert layer.compute_output_shape((None,)) == (None, 8)


def test_config_and_saving_keep_the_idf(tmp_path):
    layer = HashedNgrams(num_buckets=64, word_ngrams=1, char_ngrams=(3, 3), name="hashed")
    layer.adapt(["top up my card", "card lost"])
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    x = tf.constant(["lost my card", "new words"])
    np.testing.assert_allclose(reloaded(x).numpy(), model(x).numpy())
    assert HashedNgrams.from_config(layer.get_config()).get_config() == layer.get_config()
    assert layer.get_config()["char_ngrams"] == [3, 3]


@pytest.mark.parametrize("arguments, message", [
    ({"num_buckets": 0}, "`num_buckets`"),
    ({"word_ngrams": -1}, "`word_ngrams`"),
    ({"char_ngrams": (4, 3)}, "`char_ngrams`"),
    ({"char_ngrams": (3,)}, "`char_ngrams`"),
    ({"word_ngrams": 0, "char_ngrams": None}, "no feature"),
])
def test_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        HashedNgrams(**arguments)
    with pytest.raises(ValueError, match="`sentences`"):
        HashedNgrams(8).adapt([])
