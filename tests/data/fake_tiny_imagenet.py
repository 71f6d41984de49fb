"""A small fake Tiny ImageNet in the exact on-disk layout of `<root>/tiny_imagenet/`."""

import hashlib
import zipfile
from pathlib import Path

from fake_images import encode, pixels

# 10 classes (6 / 2 / 2 in the few-shot split), 8 JPEGs each, every third one greyscale.
WNIDS = tuple(f"n{index:08d}" for index in range(10))
SPLITS = {"train": WNIDS[:6], "val": WNIDS[6:8], "test": WNIDS[8:]}
IMAGES = 8


def fake_members() -> dict[str, bytes]:
    members = {
        "tiny-imagenet-200/wnids.txt": ("\n".join(WNIDS) + "\n").encode(),
        "tiny-imagenet-200/words.txt": "".join(f"{w}\tthing {w}\n" for w in WNIDS).encode(),
    }
    for c, wnid in enumerate(WNIDS):
        folder = f"tiny-imagenet-200/train/{wnid}"
        members[f"{folder}/{wnid}_boxes.txt"] = b"".join(
            f"{wnid}_{i}.JPEG\t0\t0\t63\t63\n".encode() for i in range(IMAGES))
        for i in range(IMAGES):
            mode = "L" if i % 3 == 0 else "RGB"
            members[f"{folder}/images/{wnid}_{i}.JPEG"] = encode(pixels(c, i, 64), "JPEG", mode)
    return members


def write_fake_tiny_imagenet(root: Path, archive: bool = True) -> Path:
    """Writes `<root>/tiny_imagenet/` (the stored zip, or its extracted folder) and returns
    the data root."""
    folder = root / "tiny_imagenet"
    (folder / "splits" / "fewshot").mkdir(parents=True)
    members = fake_members()
    if archive:
        with zipfile.ZipFile(folder / "tiny-imagenet-200-train.zip", "w") as zipped:
            for name, data in members.items():
                zipped.writestr(name, data)
    else:
        for name, data in members.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
    sums = []
    for split, wnids in SPLITS.items():
        path = folder / "splits" / "fewshot" / f"{split}.txt"
        path.write_text("\n".join(wnids) + "\n")
        sums.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  "
                    f"splits/fewshot/{split}.txt")
    (folder / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return root
