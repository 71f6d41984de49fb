"""The TF-IDF baseline against hand-derived numbers."""

import math

import numpy as np
import pytest

from tfmeta.baselines import TfidfPrototypes, episode_accuracies, ngrams


def test_ngrams_drop_one_letter_words_and_punctuation():
    assert ngrams("I lost MY card!") == ["lost", "my", "card", "lost my", "my card"]


def test_vectors_and_logits_by_hand():
    baseline = TfidfPrototypes(["top up", "card lost", "top card"])
    # Document frequencies: top 2, up 1, card 2, lost 1, "top up" 1, "card lost" 1, "top card" 1.
    low, high = math.log(4 / 3) + 1, math.log(4 / 2) + 1
    assert baseline.idf[baseline.index["top"]] == pytest.approx(low)
    assert baseline.idf[baseline.index["up"]] == pytest.approx(high)
    vector = baseline.vectors(["top top up unknown"])[0]
    expected = {"top": 2 * low, "up": high, "top up": high}
    norm = math.sqrt(sum(v * v for v in expected.values()))
    for term, value in expected.items():
        assert vector[baseline.index[term]] == pytest.approx(value / norm)
    assert vector.sum() == pytest.approx(sum(expected.values()) / norm)
    # Class 0: mean of "top up" and "top"; class 1: "card lost". Query "up": cosine to each.
    logits = baseline.logits(["top up", "card lost", "top"], [0, 1, 0], ["up"])
    a = baseline.vectors(["top up"])[0] + baseline.vectors(["top"])[0]
    up = baseline.vectors(["up"])[0]
    assert logits[0, 0] == pytest.approx(up @ a / np.linalg.norm(a))
    assert logits[0, 1] == 0.0


def test_episode_accuracies():
    baseline = TfidfPrototypes(["top up", "card lost"])
    inputs = {"support_x": np.array([[b"top up", b"card lost"]] * 2),
              "support_y": np.array([[0, 1], [1, 0]]),
              "query_x": np.array([[b"up", b"lost"]] * 2)}
    accuracies = episode_accuracies(baseline, inputs, np.array([[0, 1], [0, 1]]))
    assert accuracies.tolist() == [1.0, 0.0]
