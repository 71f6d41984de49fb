"""Split rules on synthetic character lists shaped like Omniglot (no images needed)."""

import numpy as np
import pytest

from tfmeta.data.omniglot.splits import VINYALS_VALIDATION_ALPHABETS, split_classes

# 964 background characters (with the five Vinyals validation alphabets among them),
# then 659 evaluation characters, each half sorted as the loader lists them.
VALIDATION_SIZES = (41, 46, 22, 22, 41)  # as in the real alphabets: 172 characters
BACKGROUND = sorted(
    [
        f"{a}/character{i:02d}"
        for a, size in zip(VINYALS_VALIDATION_ALPHABETS, VALIDATION_SIZES)
        for i in range(1, size + 1)
    ]
    + [f"Bg{a:02d}/character{i:02d}" for a in range(24) for i in range(1, 34)]
)
EVALUATION = sorted(f"Ev{a:02d}/character{i:02d}" for a in range(20) for i in range(1, 34))[:659]
NAMES = BACKGROUND + EVALUATION


def classes(scheme, split, rotations=None):
    result = split_classes(NAMES, len(BACKGROUND), scheme, split, rotations)
    return set(zip(result.characters.tolist(), result.turns.tolist()))


def test_synthetic_list_has_omniglot_counts():
    assert (len(BACKGROUND), len(EVALUATION), len(set(NAMES))) == (964, 659, 1623)


@pytest.mark.parametrize(
    "scheme, sizes",
    [
        ("vinyals", {"train": 1028, "validation": 172, "test": 423}),
        ("maml", {"train": 1100, "validation": 100, "test": 423}),
        ("lake", {"train": 964, "test": 659}),
    ],
)
def test_split_sizes_disjoint_and_covering(scheme, sizes):
    plain = {split: classes(scheme, split, rotations=False) for split in sizes}
    assert {split: len(c) for split, c in plain.items()} == sizes
    union = set().union(*plain.values())
    assert len(union) == sum(sizes.values())  # disjoint
    assert {c for c, _ in union} == set(range(1623))  # every character is in one split
    rotated = {split: classes(scheme, split, rotations=True) for split in sizes}
    assert {split: len(c) for split, c in rotated.items()} == {s: 4 * n for s, n in sizes.items()}
    for split in sizes:
        assert {(c, t) for c, _ in plain[split] for t in range(4)} == rotated[split]


def test_default_rotations_per_scheme():
    assert len(classes("vinyals", "train")) == 4112
    assert len(classes("maml", "train")) == 4400
    assert len(classes("lake", "train")) == 964


def test_vinyals_rule_validation_is_the_five_alphabets():
    validation = classes("vinyals", "validation", rotations=False)
    alphabets = {NAMES[c].split("/")[0] for c, _ in validation}
    assert alphabets == set(VINYALS_VALIDATION_ALPHABETS)
    assert {c for c, _ in classes("vinyals", "test", rotations=False)} == set(range(1200, 1623))


def test_maml_split_is_a_fixed_seeded_shuffle():
    first = split_classes(NAMES, 964, "maml", "test", False).characters
    again = split_classes(list(NAMES), 964, "maml", "test", False).characters
    np.testing.assert_array_equal(first, again)
    # Not a contiguous block: the shuffle mixes background and evaluation characters.
    assert (first < 964).any() and (first >= 964).any()


def test_val_alias_and_empty_split():
    assert classes("vinyals", "val") == classes("vinyals", "validation")
    with pytest.raises(ValueError, match="Split 'test' of scheme 'maml' has no classes"):
        split_classes(NAMES[:50], 30, "maml", "test")
