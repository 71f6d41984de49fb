"""Fixtures for the CLI tests."""

import pytest
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
