"""Data files against their folder's SHA256SUMS and known sizes (issue 17, item 3)."""

import hashlib
import shutil

import pytest

from tfmeta.data import checksums
from tfmeta.data.omniglot.splits import split_classes


def write_sums(folder, names):
    lines = [f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  ./{n}" for n in names]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def test_a_listed_file_must_match(tmp_path):
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "test.txt").write_text("a\nb\n")
    write_sums(tmp_path, ["splits/test.txt"])
    assert checksums.verify_file(tmp_path / "splits" / "test.txt", tmp_path)
    (tmp_path / "splits" / "test.txt").write_text("a\n")
    with pytest.raises(ValueError, match=r"does not match its checksum .*SHA256SUMS"):
        checksums.verify_file(tmp_path / "splits" / "test.txt", tmp_path)


def test_an_unlisted_file_or_no_sums_is_not_checked(tmp_path):
    (tmp_path / "other.txt").write_text("x")
    assert not checksums.verify_file(tmp_path / "other.txt", tmp_path)
    write_sums(tmp_path, [])
    assert not checksums.verify_file(tmp_path / "other.txt", tmp_path)


def test_the_shipped_sums_match(real_root):
    folder = real_root / "tiny_imagenet"
    assert checksums.verify_file(folder / "splits" / "fewshot" / "test.txt", folder)


def test_a_truncated_vinyals_file_is_refused(real_root, tmp_path):
    splits = tmp_path / "omniglot" / "splits" / "vinyals"
    splits.mkdir(parents=True)
    lines = (real_root / "omniglot/splits/vinyals/test.txt").read_text().splitlines()
    names = sorted({line.rpartition("/")[0] for line in lines})
    others = [f"Other/character{i:04d}" for i in range(1623 - len(names))]
    (splits / "test.txt").write_text("\n".join(lines[:100]) + "\n")
    with pytest.raises(ValueError, match=r"has 100 classes \(lines\) for split 'test', "
                                         r"expected 1,692"):
        split_classes(others + names, 964, "vinyals", "test", splits_dir=splits)
    shutil.copy(real_root / "omniglot/splits/vinyals/test.txt", splits / "test.txt")
    assert len(split_classes(others + names, 964, "vinyals", "test", splits_dir=splits)
               .characters) == 1692


def test_a_modified_omniglot_zip_listed_in_sha256sums_is_refused(fake_root, no_tfds):
    from tfmeta.data import load_omniglot

    folder = fake_root / "omniglot"
    zips = sorted(p.name for p in folder.glob("*.zip"))
    write_sums(folder, zips)
    load_omniglot(fake_root, image_size=6)
    with open(folder / zips[0], "ab") as file:
        file.write(b"\0")
    with pytest.raises(ValueError, match="does not match its checksum"):
        load_omniglot(fake_root, image_size=8)
