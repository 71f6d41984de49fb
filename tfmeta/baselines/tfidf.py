"""A training-free few-shot text baseline: TF-IDF n-grams, cosine to the mean support vector."""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

# Words of two or more word characters, lower-cased (scikit-learn's default tokenizer).
_WORD = re.compile(r"(?u)\b\w\w+\b")


def ngrams(sentence: str, max_n: int = 2) -> list[str]:
    """The word n-grams (n = 1..max_n) of `sentence`, in order, as space-joined strings.

    Example:
    >>> ngrams("Top up my card!")
    ['top', 'up', 'my', 'card', 'top up', 'up my', 'my card']
    """
    words = _WORD.findall(sentence.lower())
    grams = list(words)
    for n in range(2, max_n + 1):
        grams.extend(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
    return grams


class TfidfPrototypes:
    """TF-IDF of word unigrams and bigrams, classified by cosine to each class's mean vector.

    The vocabulary and the inverse document frequencies come from `sentences` (give it the
    meta-training intents' sentences only): `idf(t) = ln((1 + D) / (1 + df(t))) + 1` over
    the `D` sentences, term counts times idf, each sentence's vector L2-normalised (the
    defaults of scikit-learn's `TfidfVectorizer(ngram_range=(1, 2))`). N-grams outside the
    vocabulary are dropped. An episode's class vectors are the means of its support
    vectors; the logits of a query are its cosine similarities to them.

    Args:
        sentences: The sentences that define the vocabulary and the idf.
        max_n: The longest n-gram (2: unigrams and bigrams).

    Example:
    >>> baseline = TfidfPrototypes(["top up my card", "card lost", "exchange rate"])
    >>> logits = baseline.logits(["top up", "lost card"], [0, 1], ["card top up please"])
    >>> int(logits.argmax())
    0
    """

    def __init__(self, sentences: Iterable[str], max_n: int = 2) -> None:
        self.max_n = int(max_n)
        document_frequency: collections.Counter[str] = collections.Counter()
        documents = 0
        for sentence in sentences:
            document_frequency.update(set(ngrams(sentence, self.max_n)))
            documents += 1
        terms = sorted(document_frequency)
        self.index = {term: i for i, term in enumerate(terms)}
        self.idf = np.array(
            [math.log((1 + documents) / (1 + document_frequency[t])) + 1 for t in terms],
            dtype=np.float64,
        )

    def vectors(self, sentences: Sequence[str]) -> np.ndarray:
        """`[len(sentences), vocabulary]` L2-normalised TF-IDF vectors (zero when no term)."""
        out = np.zeros([len(sentences), len(self.index)], dtype=np.float64)
        for row, sentence in enumerate(sentences):
            for gram in ngrams(sentence, self.max_n):
                column = self.index.get(gram)
                if column is not None:
                    out[row, column] += 1.0
        out *= self.idf
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def logits(self, support_x: Sequence[str], support_y: Sequence[int],
               query_x: Sequence[str]) -> np.ndarray:
        """Cosine similarities `[Q, N]` of the queries to the mean support vector of each class."""
        support_y = np.asarray(support_y)
        support = self.vectors(list(support_x))
        ways = int(support_y.max()) + 1
        means = np.stack([support[support_y == c].mean(axis=0) for c in range(ways)])
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        return self.vectors(list(query_x)) @ means.T


def episode_accuracies(baseline: TfidfPrototypes, inputs: dict, query_y: np.ndarray) -> np.ndarray:
    """The baseline's query accuracy on each episode of a meta-batch `(inputs, query_y)`.

    Example:
    >>> baseline = TfidfPrototypes(["a card", "a rate"])
    >>> inputs = {"support_x": np.array([[b"card", b"rate"]]), "support_y": np.array([[0, 1]]),
    ...           "query_x": np.array([[b"rate", b"card"]])}
    >>> episode_accuracies(baseline, inputs, np.array([[1, 0]])).tolist()
    [1.0]
    """
    accuracies = []
    for b in range(len(query_y)):
        support_x = [_text(s) for s in np.asarray(inputs["support_x"][b])]
        query_x = [_text(s) for s in np.asarray(inputs["query_x"][b])]
        logits = baseline.logits(support_x, np.asarray(inputs["support_y"][b]), query_x)
        accuracies.append(float((logits.argmax(axis=1) == np.asarray(query_y[b])).mean()))
    return np.array(accuracies)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
