"""Episodic datasets: the episode sampler, the dataset registry, the datasets, data locations.

`list_datasets()` names every registered dataset; `get_dataset(name)` describes one.
"""

from tfmeta.data.data_dir import resolve_cache_dir as resolve_cache_dir
from tfmeta.data.data_dir import resolve_data_dir as resolve_data_dir
from tfmeta.data.episodes import episodes as episodes
from tfmeta.data.intents import IntentClasses as IntentClasses
from tfmeta.data.intents import intent_sentences as intent_sentences
from tfmeta.data.intents import intents as intents
from tfmeta.data.intents import load_intents as load_intents
from tfmeta.data.omniglot import OmniglotImages as OmniglotImages
from tfmeta.data.omniglot import load_omniglot as load_omniglot
from tfmeta.data.omniglot import omniglot as omniglot
from tfmeta.data.omniglot_splits import SCHEMES as OMNIGLOT_SCHEMES
from tfmeta.data.omniglot_splits import SPLITS as OMNIGLOT_SPLITS
from tfmeta.data.registry import DatasetSpec as DatasetSpec
from tfmeta.data.registry import get_dataset as get_dataset
from tfmeta.data.registry import list_datasets as list_datasets
from tfmeta.data.registry import register as register
from tfmeta.data.sinusoid import sinusoid as sinusoid

__all__ = [
    "DatasetSpec",
    "IntentClasses",
    "OMNIGLOT_SCHEMES",
    "OMNIGLOT_SPLITS",
    "OmniglotImages",
    "episodes",
    "get_dataset",
    "intent_sentences",
    "intents",
    "list_datasets",
    "load_intents",
    "load_omniglot",
    "omniglot",
    "register",
    "resolve_cache_dir",
    "resolve_data_dir",
    "sinusoid",
]
