"""mini-ImageNet as a TensorFlow Datasets builder, from files the user supplies.

`MiniImagenet` (TFDS name "mini_imagenet") builds the splits "train", "validation" and
"test" of Ravi and Larochelle's (2017) class split (64 / 16 / 20 classes, 600 images each in
the common release) from a manual folder holding the images, in either layout:

- the common release: `<manual_dir>/images/<wnid><number>.jpg` (60,000 84x84 JPEGs such as
  `n0153282900000005.jpg`; `train.csv`, `val.csv` and `test.csv` may sit beside `images/`
  and are not needed, as the class lists ship with tfmeta);
- class folders, as ImageNet is laid out: `<manual_dir>/<any folders>/<wnid>/<image>`.

Each image's class is its folder's name if that is a mini-ImageNet WordNet id, else the id
its file name begins with. Every image file under the folder (`.jpg`, `.jpeg`, `.png`) must
belong to one of the 100 classes and every class must have images: anything else is an
error naming the file or class, never skipped.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import tensorflow_datasets as tfds

from tfmeta.data.benchmarks.benchmark_splits import SPLITS, split_classes

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
WNID_LENGTH = 9  # "n" and eight digits.

LAYOUT = (
    "the 60,000 mini-ImageNet JPEGs as images/<wnid><number>.jpg (e.g. "
    "images/n0153282900000005.jpg, the common release of Ravi & Larochelle's split, whose "
    "train.csv, val.csv and test.csv may sit beside images/) or as class folders <wnid>/<image>"
)

_CITATION = """\
@inproceedings{ravi2017optimization,
  title={Optimization as a Model for Few-Shot Learning},
  author={Ravi, Sachin and Larochelle, Hugo},
  booktitle={International Conference on Learning Representations},
  year={2017}
}
@inproceedings{vinyals2016matching,
  title={Matching Networks for One Shot Learning},
  author={Vinyals, Oriol and Blundell, Charles and Lillicrap, Timothy and Kavukcuoglu, Koray
          and Wierstra, Daan},
  booktitle={Advances in Neural Information Processing Systems},
  year={2016}
}
"""


def wnids(split: str) -> tuple[str, ...]:
    """The WordNet ids of one split of Ravi and Larochelle's class split.

    Example:
    >>> wnids("train")[0]
    'n01532829'
    """
    return split_classes("mini_imagenet", split)


def find_images(manual_dir: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """Maps each of the 100 WordNet ids to its image files under `manual_dir`, sorted.

    Args:
        manual_dir: The folder holding mini-ImageNet (see the module docstring).

    Returns:
        `{wnid: [paths]}` for all 100 classes.

    Raises:
        FileNotFoundError: When the folder is missing, holds no images, or lacks a class.
        ValueError: For an image of no mini-ImageNet class, or one image found twice.

    Example:
    >>> find_images("/nonexistent")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    FileNotFoundError: No mini-ImageNet images in /nonexistent: put ...
    """
    folder = Path(manual_dir).expanduser()
    known = set(wnids("train") + wnids("validation") + wnids("test"))
    files = (
        sorted(path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
        if folder.is_dir()
        else []
    )
    if not files:
        raise FileNotFoundError(f"No mini-ImageNet images in {folder}: put {LAYOUT} there.")
    found: dict[str, list[Path]] = defaultdict(list)
    seen: dict[tuple[str, str], Path] = {}
    for path in files:
        wnid = path.parent.name if path.parent.name in known else path.name[:WNID_LENGTH]
        if wnid not in known:
            raise ValueError(
                f"{path} is not an image of a mini-ImageNet class: its folder or the start of "
                "its name should be a WordNet id of "
                "tfmeta/data/benchmarks/class_lists/mini_imagenet/."
            )
        if (wnid, path.name) in seen:
            raise ValueError(f"The image {path.name} is twice in {folder}: {seen[wnid, path.name]}"
                             f" and {path}. Keep one layout.")
        seen[wnid, path.name] = path
        found[wnid].append(path)
    missing = sorted(known - set(found))
    if missing:
        raise FileNotFoundError(
            f"mini-ImageNet in {folder} lacks {len(missing)} of its 100 classes (e.g. no images "
            f"of {missing[0]}): put {LAYOUT} there."
        )
    return dict(found)


class MiniImagenet(tfds.core.GeneratorBasedBuilder):
    """mini-ImageNet (Vinyals et al. 2016) with Ravi and Larochelle's 64/16/20 class split.

    Features: "image" (RGB, as stored in the manual files), "label" (a `ClassLabel` over
    the 100 WordNet ids: the 64 training, then 16 validation, then 20 test ids, each in
    class-list order) and "image/filename". The split "train" holds the images of the 64
    training classes, "validation" and "test" those of the others.

    Example:
    >>> builder = MiniImagenet(data_dir="/tmp/tfds")  # doctest: +SKIP
    >>> builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
    ...     manual_dir="/data/mini_imagenet"))  # doctest: +SKIP
    >>> builder.as_dataset(split="test")  # doctest: +SKIP
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Ravi and Larochelle's split, from images/ or class folders."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"Put {LAYOUT} in the manual folder."

    def _info(self) -> tfds.core.DatasetInfo:
        names = [wnid for split in SPLITS for wnid in wnids(split)]
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(names=names),
                    "image/filename": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://github.com/yaoyao-liu/mini-imagenet-tools",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        images = find_images(dl_manager.manual_dir)
        return {
            split: self._generate_examples({wnid: images[wnid] for wnid in wnids(split)})
            for split in SPLITS
        }

    def _generate_examples(self, images: dict[str, list[Path]]):
        for wnid, paths in images.items():
            for path in paths:
                yield f"{wnid}/{path.name}", {
                    "image": os.fspath(path),
                    "label": wnid,
                    "image/filename": path.name,
                }
