"""Fixtures for the CLI tests."""

import numpy as np
import pytest
import tensorflow as tf
from cli_helpers import CONFIGS, run_in_process


@pytest.fixture(scope="session")
def sinusoid_run(tmp_path_factory):
    """A tiny sinusoid MAML run trained in-process through tfmeta-train's main."""
    from tfmeta.cli import train

    model_dir = tmp_path_factory.mktemp("runs") / "sine"
    run_in_process(train, [
        f"--flagfile={CONFIGS / 'sinusoid_maml.cfg'}", f"--model_dir={model_dir}",
        "--meta_batch_size=2", "--train_steps=20", "--steps_per_epoch=10", "--eval_inner_steps=3",
        "--verbose=0",
    ])
    return model_dir


@pytest.fixture(scope="session")
def sinusoid_learner(sinusoid_run):
    """`(learner, experiment)` of `sinusoid_run`, loaded once."""
    from tfmeta.cli.evaluation import load_trained

    return load_trained(sinusoid_run)


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory):
    """8 classes of 6 RGB PNGs, 20x20, each class its own colour plus noise."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for c in range(8):
        colour = rng.integers(0, 256, 3)
        (root / f"class_{c}").mkdir()
        for i in range(6):
            noise = rng.integers(-20, 21, (20, 20, 3))
            image = np.clip(colour + noise, 0, 255).astype(np.uint8)
            (root / f"class_{c}" / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    return root
