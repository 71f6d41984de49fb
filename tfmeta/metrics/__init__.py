"""Episodic metrics: means over episodes with their 95% confidence intervals."""

from tfmeta.metrics.confidence import mean_confidence_interval
from tfmeta.metrics.episodic_accuracy import EpisodicAccuracy
from tfmeta.metrics.episodic_mean_squared_error import EpisodicMeanSquaredError

__all__ = [
    "EpisodicAccuracy",
    "EpisodicMeanSquaredError",
    "mean_confidence_interval",
]
