"""Episodic datasets: the episode sampler, the dataset registry, the datasets, data locations.

`list_datasets()` names every registered dataset; `get_dataset(name)` describes one.
"""

from tfmeta.data.batches import batches as batches
from tfmeta.data.benchmarks.benchmark_splits import split_classes as benchmark_classes
from tfmeta.data.benchmarks.cifar_fs import cifar_fs as cifar_fs
from tfmeta.data.benchmarks.cub import cub as cub
from tfmeta.data.benchmarks.fc100 import fc100 as fc100
from tfmeta.data.benchmarks.mini_imagenet import mini_imagenet as mini_imagenet
from tfmeta.data.benchmarks.mini_imagenet import prepared_mini_imagenet as prepared_mini_imagenet
from tfmeta.data.control.demonstrations import Demonstrations as Demonstrations
from tfmeta.data.control.demonstrations import load_demonstrations as load_demonstrations
from tfmeta.data.control.metaworld import metaworld as metaworld
from tfmeta.data.data_dir import resolve_cache_dir as resolve_cache_dir
from tfmeta.data.data_dir import resolve_data_dir as resolve_data_dir
from tfmeta.data.episodes import episodes as episodes
from tfmeta.data.images.image_folder import ImageFolderImages as ImageFolderImages
from tfmeta.data.images.image_folder import image_folder as image_folder
from tfmeta.data.images.image_folder import image_folder_classes as image_folder_classes
from tfmeta.data.images.image_folder import load_image_folder as load_image_folder
from tfmeta.data.images.tiny_imagenet import tiny_imagenet as tiny_imagenet
from tfmeta.data.mixing import convert_images as convert_images
from tfmeta.data.mixing import mix as mix
from tfmeta.data.omniglot.omniglot import OmniglotImages as OmniglotImages
from tfmeta.data.omniglot.omniglot import load_omniglot as load_omniglot
from tfmeta.data.omniglot.omniglot import omniglot as omniglot
from tfmeta.data.omniglot.splits import SCHEMES as OMNIGLOT_SCHEMES
from tfmeta.data.omniglot.splits import SPLITS as OMNIGLOT_SPLITS
from tfmeta.data.registry import ClassExamples as ClassExamples
from tfmeta.data.registry import DatasetSpec as DatasetSpec
from tfmeta.data.registry import get_dataset as get_dataset
from tfmeta.data.registry import get_datasets as get_datasets
from tfmeta.data.registry import list_datasets as list_datasets
from tfmeta.data.registry import register as register
from tfmeta.data.regression.sinusoid import sinusoid as sinusoid
from tfmeta.data.text.intents import IntentClasses as IntentClasses
from tfmeta.data.text.intents import intent_sentences as intent_sentences
from tfmeta.data.text.intents import intents as intents
from tfmeta.data.text.intents import load_intents as load_intents

__all__ = [
    "ClassExamples",
    "DatasetSpec",
    "Demonstrations",
    "ImageFolderImages",
    "IntentClasses",
    "OMNIGLOT_SCHEMES",
    "OMNIGLOT_SPLITS",
    "OmniglotImages",
    "batches",
    "benchmark_classes",
    "cifar_fs",
    "convert_images",
    "cub",
    "episodes",
    "fc100",
    "get_dataset",
    "get_datasets",
    "image_folder",
    "image_folder_classes",
    "load_image_folder",
    "intent_sentences",
    "intents",
    "list_datasets",
    "load_demonstrations",
    "load_intents",
    "load_omniglot",
    "metaworld",
    "mini_imagenet",
    "mix",
    "omniglot",
    "prepared_mini_imagenet",
    "register",
    "resolve_cache_dir",
    "resolve_data_dir",
    "sinusoid",
    "tiny_imagenet",
]
