"""Non-episodic (x, y) batches over a split's classes (pre-training baselines)."""

import numpy as np
import pytest

from tfmeta import data
from tfmeta.data.omniglot.omniglot import split_examples


def test_one_pass_visits_every_example_once_with_its_class(fake_root):
    # The "lake" scheme's background split: the 5 fake background characters, 20 drawings each.
    classes = split_examples("train", fake_root, image_size=12, scheme="lake")
    assert classes.examples.shape == (100, 12, 12, 1) and list(classes.sizes) == [20] * 5
    stream = data.batches("omniglot", "train", batch_size=25, seed=3, data_dir=fake_root,
                          image_size=12, scheme="lake")
    assert stream.element_spec[0].shape == (25, 12, 12, 1)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in stream.take(4)])
    x, y = np.concatenate(xs), np.concatenate(ys)
    # A fake drawing of character c, drawing d has ink at (0, 0) and (2 + c, 1 + d % 10).
    marks = [tuple(np.argwhere(e[..., 0] == 1.0)[-1]) for e in x]
    assert all(row - 2 == label for (row, _), label in zip(marks, y))
    # One pass: each (character, d % 10) exactly twice, each class 20 times.
    counts = {}
    for mark in marks:
        counts[mark] = counts.get(mark, 0) + 1
    assert len(counts) == 50 and set(counts.values()) == {2}
    assert y.dtype == np.int32 and not (y[:25] == np.sort(y[:25])).all()  # shuffled


def test_same_seed_same_order_other_seed_other_order(fake_root):
    def first(seed):
        stream = data.batches("omniglot", batch_size=10, seed=seed, data_dir=fake_root,
                              image_size=12, scheme="lake")
        return next(iter(stream))[1].numpy()

    np.testing.assert_array_equal(first(0), first(0))
    assert not np.array_equal(first(0), first(1))


def test_bad_arguments(fake_root):
    with pytest.raises(ValueError, match="`dataset`.*with classes"):
        data.batches("sinusoid")
    with pytest.raises(ValueError, match="`batch_size`.*examples of split"):
        data.batches("omniglot", batch_size=101, data_dir=fake_root, image_size=12,
                     scheme="lake")
    with pytest.raises(ValueError, match="not among its options"):
        data.batches("omniglot", data_dir=fake_root, ways=5)
    with pytest.raises(ValueError, match="`seed`"):
        data.batches("omniglot", seed="x", data_dir=fake_root)


def test_image_folder_batches_follow_the_seeded_class_split(tmp_path):
    # `--dataset=image_folder`: pre-training reads exactly the classes that the split's
    # episodes read (the seeded 60/20/20 split), labelled in that split's order.
    from fake_images import image_tree, write_folder

    folder = write_folder(tmp_path / "photos", image_tree(10, 4, size=8))
    classes = data.image_folder_classes(folder, 8, split="train")
    assert list(classes.sizes) == [4] * 6 and classes.scale == 1.0 / 255.0
    episode_classes = data.image_folder_classes(folder, 8, split="test")
    assert list(episode_classes.sizes) == [4] * 2
    stream = data.batches("image_folder", "train", batch_size=24, seed=0, image_size=8,
                          image_folder=str(folder))
    x, y = (t.numpy() for t in next(iter(stream)))
    assert x.shape == (24, 8, 8, 3) and sorted(y) == sorted(list(range(6)) * 4)
    with pytest.raises(ValueError, match="`image_folder`"):
        data.batches("image_folder", "train", image_size=8)
