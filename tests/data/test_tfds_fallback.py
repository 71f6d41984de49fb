"""A missing data folder fails in one line, without a doomed TFDS download (item 10)."""

import importlib.util

import pytest

from tfmeta.data import load_omniglot, tfds_fallback

omniglot_source = __import__("tfmeta.data.omniglot.source", fromlist=["_"])


def test_without_what_tfds_needs_no_download_starts(tmp_path, monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None
                        if name == "importlib_resources" else real_find_spec(name, *a))
    monkeypatch.setattr(omniglot_source, "_tfds_examples",
                        lambda split: pytest.fail("a TFDS download was attempted"))
    with pytest.raises(FileNotFoundError) as info:
        load_omniglot(tmp_path, 28)
    message = str(info.value)
    assert "\n" not in message and f"No Omniglot was found in {tmp_path}" in message
    assert "TFMETA_DATA_DIR" in message and "pip install importlib_resources" in message
    assert "Downloading and preparing" not in capsys.readouterr().out


def test_a_failed_tfds_read_gives_the_same_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_fallback, "tfds_unavailable_reason", lambda: None)

    def offline():
        raise ConnectionError("no network\n(test)")

    with pytest.raises(FileNotFoundError, match=r"failed too \(no network \(test\)\)") as info:
        tfds_fallback.read_with_tfds("tiny_imagenet", tmp_path, "the zip", offline)
    assert "\n" not in str(info.value) and "tiny_imagenet/" in str(info.value)
