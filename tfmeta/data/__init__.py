"""Episodic datasets: the episode sampler, the dataset registry, the datasets, data locations.

`list_datasets()` names every registered dataset; `get_dataset(name)` describes one.
"""

from tfmeta.data.data_dir import resolve_cache_dir as resolve_cache_dir
from tfmeta.data.data_dir import resolve_data_dir as resolve_data_dir
from tfmeta.data.episodes import episodes as episodes
from tfmeta.data.image_folder import ImageFolderImages as ImageFolderImages
from tfmeta.data.image_folder import image_folder as image_folder
from tfmeta.data.image_folder import load_image_folder as load_image_folder
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
from tfmeta.data.tiny_imagenet import tiny_imagenet as tiny_imagenet

__all__ = [
    "DatasetSpec",
    "ImageFolderImages",
    "OMNIGLOT_SCHEMES",
    "OMNIGLOT_SPLITS",
    "OmniglotImages",
    "episodes",
    "get_dataset",
    "image_folder",
    "list_datasets",
    "load_image_folder",
    "load_omniglot",
    "omniglot",
    "register",
    "resolve_cache_dir",
    "resolve_data_dir",
    "sinusoid",
    "tiny_imagenet",
]
