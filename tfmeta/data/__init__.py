"""Episodic datasets: the episode sampler, Omniglot and sinusoid tasks, data locations."""

from tfmeta.data.data_dir import resolve_cache_dir as resolve_cache_dir
from tfmeta.data.data_dir import resolve_data_dir as resolve_data_dir
from tfmeta.data.episodes import episodes as episodes
from tfmeta.data.omniglot import OmniglotImages as OmniglotImages
from tfmeta.data.omniglot import load_omniglot as load_omniglot
from tfmeta.data.omniglot import omniglot as omniglot
from tfmeta.data.omniglot_splits import SCHEMES as OMNIGLOT_SCHEMES
from tfmeta.data.omniglot_splits import SPLITS as OMNIGLOT_SPLITS
from tfmeta.data.sinusoid import sinusoid as sinusoid

__all__ = [
    "OMNIGLOT_SCHEMES",
    "OMNIGLOT_SPLITS",
    "OmniglotImages",
    "episodes",
    "load_omniglot",
    "omniglot",
    "resolve_cache_dir",
    "resolve_data_dir",
    "sinusoid",
]
