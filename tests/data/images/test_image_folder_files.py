"""What an image folder may hold that is not an image file (issue 25, items 7 and 9): only
regular files are read, with a size bound per file and per zip member and a pixel bound per
image; FIFOs, devices, dangling and self-referencing links and folder loops are skipped
with one warning naming them. Every test runs under an alarm: a hang fails it."""

import contextlib
import importlib
import io
import os
import signal
import struct
import warnings
import zipfile
import zlib

import numpy as np
import pytest
from fake_images import KINDS, encode, image_tree, pixels, write_folder, write_zip
from PIL import Image

from tfmeta.data import image_folder, load_image_folder

image_folder_module = importlib.import_module("tfmeta.data.images.image_folder")
source_module = importlib.import_module("tfmeta.data.images.image_folder_source")
decoding_module = importlib.import_module("tfmeta.data.images.image_decoding")

EPISODE = {"ways": 2, "shots": 1, "queries": 1, "meta_batch_size": 1, "image_size": 12}


@contextlib.contextmanager
def deadline(seconds=20):
    """Fails the test instead of hanging (a FIFO) or reading forever (/dev/zero)."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path / "photos", image_tree(num_classes=3, images_per_class=2))


def only_warning(record):
    messages = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
    assert len(messages) == 1, messages
    assert "\n" not in messages[0]
    return messages[0]


def test_a_fifo_and_a_dev_zero_link_named_png_are_skipped_with_one_warning(folder):
    os.mkfifo(folder / "class_00" / "pipe.png")
    (folder / "class_01" / "zero.png").symlink_to("/dev/zero")
    with deadline(), warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        loaded = load_image_folder(folder, 12)
    message = only_warning(record)
    assert "class_00/pipe.png (not a regular file: a FIFO)" in message
    assert "class_01/zero.png (not a regular file: a device)" in message
    assert loaded.images.shape[0] == 6 and loaded.sizes.tolist() == [2, 2, 2]


def test_a_fifo_that_replaced_an_image_after_the_listing_is_refused_not_waited_on(folder):
    listing = source_module.list_images(folder)
    victim = folder / "class_00" / listing.files[0][0].split("/", 1)[1]
    victim.unlink()
    os.mkfifo(victim)
    with deadline(), pytest.raises(ValueError, match=r"pipe|not a regular file") as raised:
        source_module.read_bytes(listing, [listing.files[0][0]])
    assert str(victim) in str(raised.value) and "\n" not in str(raised.value)


def test_links_to_regular_files_are_followed(folder, tmp_path):
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(encode(pixels(7, 7), "PNG", "RGB"))
    (folder / "class_02" / "linked.png").symlink_to(outside)
    loaded = load_image_folder(folder, 12)
    np.testing.assert_array_equal(loaded.class_images("class_02")[-1], pixels(7, 7))


def test_dangling_and_self_referencing_links_and_folder_loops_are_skipped_with_one_warning(
        folder):
    (folder / "class_00" / "gone.png").symlink_to(folder / "nowhere.png")
    (folder / "class_01" / "me.png").symlink_to(folder / "class_01" / "me.png")
    (folder / "class_02" / "loop").symlink_to(folder / "class_02")
    (folder / "class_02" / "up").symlink_to(folder)
    (folder / "dangling_class").symlink_to(folder / "no_such_folder")
    with deadline(), warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        loaded = load_image_folder(folder, 12)
    message = only_warning(record)
    assert message.startswith("Skipping 5 entries of the image folder")
    assert "class_00/gone.png (a dangling link)" in message
    assert "class_01/me.png (a link to itself or a link loop)" in message
    assert "class_02/loop (a link to a folder already listed: a loop)" in message
    assert "class_02/up (a link to a folder already listed: a loop)" in message
    assert "dangling_class (a dangling link)" in message
    assert loaded.classes == ("class_00", "class_01", "class_02")
    assert loaded.sizes.tolist() == [2, 2, 2]


def test_a_file_beyond_the_size_bound_is_refused_before_any_decoding(folder, monkeypatch):
    bound = max(file.stat().st_size for file in folder.rglob("*.*"))
    monkeypatch.setattr(source_module, "MAX_FILE_BYTES", bound)
    monkeypatch.setattr(image_folder_module, "decode_images", None)  # never reached
    (folder / "class_01" / "big.png").write_bytes(b"\x89PNG" + b"\0" * bound)
    with pytest.raises(ValueError, match=rf"class_01/big\.png holds {bound + 4:,} bytes, more "
                                         rf"than the {bound:,} \(MAX_FILE_BYTES\)"):
        image_folder(folder, **EPISODE)


def claim_size(path, member, size):
    """Rewrites the central directory of `path` so that `member` claims `size` bytes."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    at = data.index(b"PK\x01\x02")
    while data[at + 46:at + 46 + len(name)] != name:
        at = data.index(b"PK\x01\x02", at + 4)
    data[at + 24:at + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED,
                                         zipfile.ZIP_BZIP2])
def test_a_zip_member_beyond_the_size_bound_is_refused(tmp_path, monkeypatch, compression):
    tree = image_tree(num_classes=2, images_per_class=2)
    path = write_zip(tmp_path / "photos.zip", {**tree, "class_00/big.png": b"\0" * 5000},
                     compression=compression)
    monkeypatch.setattr(source_module, "MAX_FILE_BYTES", 4000)
    with pytest.raises(ValueError, match=r"photos\.zip:class_00/big\.png holds 5,000 bytes"):
        image_folder(path, **EPISODE)
    # Reading stops at the bound even when the member claims to be small.
    claim_size(path, "class_00/big.png", 10)
    listing = source_module.list_images(path)
    with deadline(), pytest.raises(ValueError, match=r"big\.png (holds at least 4,001 bytes|"
                                                     r"is corrupt)"):
        source_module.read_bytes(listing, ["class_00/big.png"])


def png_bomb(width, height):
    """A valid greyscale PNG of zeros, `width x height`, a few hundred KB compressed."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    compressor = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte + pixels
    compressed = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed)
            + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_refused_from_its_header(folder):
    bomb = png_bomb(10000, 10000)
    assert len(bomb) < 400_000
    (folder / "class_02" / "bomb.png").write_bytes(bomb)
    with deadline(), pytest.raises(ValueError) as raised:
        load_image_folder(folder, 12)
    message = str(raised.value)
    assert "class_02/bomb.png is 10000x10000 = 100,000,000 pixels" in message
    assert "MAX_IMAGE_PIXELS" in message and "\n" not in message


@pytest.mark.parametrize("extension, fmt, mode", KINDS + ((".jpg", "JPEG_PROGRESSIVE", "RGB"),))
def test_image_dimensions_read_from_every_header(extension, fmt, mode):
    image = Image.fromarray(pixels(0, 0, 12)[:, :7].repeat(3, axis=0)).convert(mode)
    buffer = io.BytesIO()
    if fmt == "JPEG_PROGRESSIVE":
        image.save(buffer, "JPEG", progressive=True, exif=b"Exif\0\0" + b"x" * 300)
    else:
        image.save(buffer, fmt)
    assert decoding_module.image_dimensions(buffer.getvalue()) == (7, 36)
    assert decoding_module.image_dimensions(b"not an image") is None
    assert decoding_module.image_dimensions(buffer.getvalue()[:5]) is None
