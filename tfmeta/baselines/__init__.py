"""Training-free baselines that keep few-shot accuracies honest."""

from tfmeta.baselines.tfidf import TfidfPrototypes, episode_accuracies, ngrams

__all__ = ["TfidfPrototypes", "episode_accuracies", "ngrams"]
