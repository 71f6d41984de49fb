"""Generated image folders `<root>/<class>/<image>` in every format and colour mode."""

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

# (extension, PIL format, PIL mode) cycled over a class's images.
KINDS = (
    (".png", "PNG", "RGB"),
    (".png", "PNG", "L"),
    (".png", "PNG", "RGBA"),
    (".png", "PNG", "P"),
    (".bmp", "BMP", "RGB"),
    (".gif", "GIF", "P"),
    (".jpg", "JPEG", "RGB"),
    (".JPEG", "JPEG", "L"),
)


def pixels(class_index: int, image_index: int, size: int = 12) -> np.ndarray:
    """A deterministic RGB image whose colours identify (class, image)."""
    rng = np.random.default_rng(1000 * class_index + image_index)
    return rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)


def encode(array: np.ndarray, fmt: str, mode: str) -> bytes:
    image = Image.fromarray(array).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def expected_rgb(data: bytes) -> np.ndarray:
    """What the file holds as RGB, by PIL (alpha dropped, palette looked up, grey repeated)."""
    image = Image.open(io.BytesIO(data))
    if image.mode == "RGBA":
        return np.asarray(image)[..., :3]
    return np.asarray(image.convert("RGB"))


def image_tree(num_classes: int = 6, images_per_class: int = 8, size: int = 12,
               sizes: dict[int, int] | None = None) -> dict[str, bytes]:
    """`{"<class>/<file>": bytes}`: classes `class_00`.., every kind of image in each."""
    tree = {}
    for c in range(num_classes):
        for i in range((sizes or {}).get(c, images_per_class)):
            extension, fmt, mode = KINDS[(c + i) % len(KINDS)]
            tree[f"class_{c:02d}/img_{i:03d}{extension}"] = encode(pixels(c, i, size), fmt, mode)
    return tree


def write_folder(root: Path, tree: dict[str, bytes]) -> Path:
    for name, data in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_zip(path: Path, tree: dict[str, bytes], prefix: str = "",
              compression: int = zipfile.ZIP_STORED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in tree.items():
            archive.writestr(prefix + name, data)
    return path
