"""Tiny fake Omniglot trees with the real layout, for loader tests (no real data needed)."""

import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf

# Fake Omniglot: (half, alphabet, characters). 5 background + 3 evaluation characters.
FAKE_ALPHABETS = (
    ("background", "Alpha", 3),
    ("background", "Beta_(Greek)", 2),
    ("evaluation", "Gamma", 3),
)
FAKE_SIZE = 12
DRAWINGS = 20


def fake_drawing(character: int, drawing: int) -> np.ndarray:
    """A white 12x12 drawing with one black stroke pixel in the top-left corner and a
    black row whose position identifies (character, drawing)."""
    image = np.full([FAKE_SIZE, FAKE_SIZE, 1], 255, np.uint8)
    image[0, 0] = 0
    image[2 + character % 10, 1 + drawing % 10] = 0
    return image


def fake_tree() -> dict[str, dict[str, bytes]]:
    """`{half: {member path: png bytes}}` with the real zip layout."""
    tree: dict[str, dict[str, bytes]] = {"background": {}, "evaluation": {}}
    character = 0
    for half, alphabet, count in FAKE_ALPHABETS:
        for number in range(1, count + 1):
            for drawing in range(DRAWINGS):
                png = tf.io.encode_png(fake_drawing(character, drawing)).numpy()
                folder = f"images_{half}/{alphabet}/character{number:02d}"
                tree[half][f"{folder}/{1000 + character:04d}_{drawing + 1:02d}.png"] = png
            character += 1
    return tree


def write_fake_omniglot(root: Path, layout: str = "omniglot_zip", tree=None) -> Path:
    """Writes fake Omniglot under `root/omniglot/` as `layout`; returns `root`.

    layout: "omniglot_zip" (omniglot_<half>.zip), "images_zip" (images_<half>.zip) or
    "folders" (extracted images_<half>/).
    """
    tree = tree or fake_tree()
    folder = root / "omniglot"
    folder.mkdir(parents=True, exist_ok=True)
    for half, members in tree.items():
        if layout == "folders":
            for name, data in members.items():
                path = folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        else:
            prefix = "omniglot" if layout == "omniglot_zip" else "images"
            with zipfile.ZipFile(folder / f"{prefix}_{half}.zip", "w") as archive:
                for name, data in members.items():
                    archive.writestr(name, data)
    return root
