"""The mean and 95% confidence interval of per-episode values, in NumPy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# Two-sided 95% quantile of the standard normal distribution, as in the few-shot papers.
Z_95 = 1.96


def mean_confidence_interval(values: npt.ArrayLike) -> tuple[float, float]:
    """Return the mean of per-episode values and its 95% confidence interval.

    The interval is the half-width `1.96 * std / sqrt(episodes)` with the population standard
    deviation (`numpy.std`, `ddof=0`), as in the reference code of Prototypical Networks and MAML.
    `tfmeta.metrics.EpisodicAccuracy` and `tfmeta.metrics.EpisodicMeanSquaredError` report the
    same two numbers from their running sums.

    Args:
        values: one value per episode (for example each episode's query accuracy), a 1-D array.

    Returns:
        A tuple `(mean, ci95)` of Python floats; the result reads as `mean ± ci95`.

    Example:
    >>> mean, ci95 = mean_confidence_interval([0.8, 0.9, 1.0])
    >>> round(mean, 4), round(ci95, 4)
    (0.9, 0.0924)

    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            "Invalid `values` for mean_confidence_interval: expected a non-empty 1-D array with "
            f"one value per episode. Received: shape={values.shape}"
        )
    mean = float(np.mean(values))
    ci95 = float(Z_95 * np.std(values) / np.sqrt(values.size))
    return mean, ci95
