import re
from importlib import resources
from pathlib import Path

import pytest

from tfmeta.data import benchmark_classes
from tfmeta.data.benchmarks.benchmark_splits import SPLITS, cifar100_classes, read_class_list

COUNTS = {
    "mini_imagenet": (64, 16, 20),
    "cifar_fs": (64, 16, 20),
    "fc100": (60, 20, 20),
    "cub": (100, 50, 50),
}


@pytest.mark.parametrize("dataset", sorted(COUNTS))
def test_split_sizes_and_disjointness(dataset):
    splits = [benchmark_classes(dataset, split) for split in SPLITS]
    assert tuple(len(classes) for classes in splits) == COUNTS[dataset]
    for classes in splits:
        assert len(set(classes)) == len(classes)
    everything = set().union(*splits)
    assert len(everything) == sum(COUNTS[dataset])  # pairwise disjoint


def test_mini_imagenet_lists_are_wordnet_ids():
    wnids = [w for split in SPLITS for w in benchmark_classes("mini_imagenet", split)]
    assert all(re.fullmatch(r"n\d{8}", wnid) for wnid in wnids)
    # First and last classes of Ravi's CSVs.
    assert benchmark_classes("mini_imagenet", "train")[0] == "n01532829"
    assert benchmark_classes("mini_imagenet", "test")[-1] == "n07613480"


def test_cifar_benchmarks_cover_cifar100():
    fine = [name for _, name in cifar100_classes()]
    assert len(fine) == 100 and fine == sorted(fine)  # CIFAR-100's label order is alphabetical
    for dataset in ("cifar_fs", "fc100"):
        assert sorted(c for split in SPLITS for c in benchmark_classes(dataset, split)) == fine
    superclasses = {}
    for superclass, name in cifar100_classes():
        superclasses.setdefault(superclass, []).append(name)
    assert len(superclasses) == 20 and all(len(v) == 5 for v in superclasses.values())
    # FC100 splits whole superclasses: 12 / 4 / 4.
    assert [len(read_class_list("fc100", name)) for name in ("train", "val", "test")] == [12, 4, 4]
    for split in SPLITS:
        for superclass in read_class_list("fc100", {"validation": "val"}.get(split, split)):
            assert set(superclasses[superclass]) <= set(benchmark_classes("fc100", split))


def test_cub_split_follows_hilliard_rule():
    numbers = {split: [int(name[:3]) for name in benchmark_classes("cub", split)]
               for split in SPLITS}
    assert sorted(sum(numbers.values(), [])) == list(range(1, 201))
    assert all(n % 2 == 1 for n in numbers["train"])
    assert all(n % 4 == 2 for n in numbers["validation"])
    assert all(n % 4 == 0 for n in numbers["test"])


def test_every_list_cites_its_source_and_ships_as_package_data():
    folder = resources.files("tfmeta.data.benchmarks") / "class_lists"
    assert (folder / "README.md").is_file()
    for dataset in (*COUNTS, "cifar100"):
        for file in (folder / dataset).iterdir():
            header = file.read_text().splitlines()[:4]
            assert any("Source" in line or "assembled from" in line for line in header), file
            assert any("MIT licence" in line for line in header), file
    setup = (Path(__file__).parents[3] / "setup.cfg").read_text()
    assert "class_lists/*/*.txt" in setup


def test_split_aliases_and_bad_names():
    assert benchmark_classes("cub", "val") == benchmark_classes("cub", "validation")
    with pytest.raises(ValueError, match=r"`split`.*Received: split='dev'"):
        benchmark_classes("cub", "dev")
    with pytest.raises(ValueError, match=r"`dataset`.*Received: dataset='tiered'"):
        benchmark_classes("tiered", "train")
