"""Every image test starts and ends with no decoded images kept in memory."""

import importlib

import pytest

image_folder_module = importlib.import_module("tfmeta.data.images.image_folder")


@pytest.fixture(autouse=True)
def fresh_memory_cache():
    image_folder_module.clear_memory_cache()
    yield
    image_folder_module.clear_memory_cache()
