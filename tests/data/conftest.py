"""Fixtures for tfmeta.data: a private cache dir, a tiny fake Omniglot, the real data."""

import importlib
import os
from pathlib import Path

import pytest
from fake_omniglot import write_fake_omniglot

omniglot_source = importlib.import_module("tfmeta.data.omniglot.source")


@pytest.fixture(autouse=True)
def private_cache_dir(tmp_path, monkeypatch):
    """Every data test caches under its own tmp folder, never in ~/.cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("TFMETA_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def fake_counts(monkeypatch):
    """Makes the loader expect the fake tree's character counts."""
    monkeypatch.setattr(omniglot_source, "EXPECTED_CHARACTERS", {"background": 5, "evaluation": 3})


@pytest.fixture
def fake_root(tmp_path, fake_counts):
    return write_fake_omniglot(tmp_path / "data")


@pytest.fixture
def no_tfds(monkeypatch):
    """TFDS behaves as offline."""

    def offline(split):
        raise ConnectionError("no network (test)")

    monkeypatch.setattr(omniglot_source, "_tfds_examples", offline)


@pytest.fixture(scope="session")
def real_root() -> Path:
    value = os.environ.get("TFMETA_DATA_DIR")
    if not value:
        pytest.skip("real-Omniglot test: TFMETA_DATA_DIR is not set (CI sets it to ../shared/data)")
    root = Path(value).absolute()
    if not (root / "omniglot").is_dir():
        pytest.skip(f"real-Omniglot test: no omniglot/ folder in TFMETA_DATA_DIR={value}")
    return root


@pytest.fixture(scope="session")
def real_cache_dir(tmp_path_factory) -> Path:
    """One decode of the real data per test session, shared by the real-data tests."""
    return tmp_path_factory.mktemp("real_cache")


@pytest.fixture(scope="session")
def real_omniglot(real_root, real_cache_dir):
    from tfmeta.data import load_omniglot

    return load_omniglot(real_root, 28, cache_dir=real_cache_dir, dtype="uint8")
