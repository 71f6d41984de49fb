"""Every config in configs/ parses with tfmeta-train's flags and cites its source."""

import dataclasses

import pytest
from absl import flags
from cli_helpers import CONFIGS

from tfmeta import data
from tfmeta.cli import demo, train
from tfmeta.cli.experiment import Experiment

CONFIG_FILES = sorted(CONFIGS.glob("*.cfg"))
SETTINGS = {"5w1s": (5, 1), "5w5s": (5, 5), "20w1s": (20, 1), "20w5s": (20, 5)}


def load(path, *extra):
    flag_values = flags.FlagValues()
    train.define_flags(flag_values)
    flag_values(["tfmeta-train", f"--flagfile={path}", "--model_dir=unused", *extra])
    return train.experiment_from_flags(flag_values)


def test_the_expected_configs_exist():
    names = {path.stem for path in CONFIG_FILES}
    expected = {"sinusoid_maml"} | {
        f"omniglot_{learner}_{setting}"
        for learner in ("maml", "fomaml", "reptile", "protonet")
        for setting in SETTINGS
    }
    assert expected | {"omniglot_mamlpp_5w1s"} <= names


def dataset_of(path):
    return next(line.split("=", 1)[1] for line in path.read_text().splitlines()
                if line.startswith("--dataset="))


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda path: path.stem)
def test_config_parses_and_cites_its_source(path):
    if dataset_of(path) not in data.list_datasets():
        # mini_imagenet comes with the TFDS builders (another branch of issue 13).
        pytest.skip(f"--dataset={dataset_of(path)} is not registered in this build")
    experiment = load(path)
    assert isinstance(experiment, Experiment)
    comments = [line for line in path.read_text().splitlines() if line.startswith("#")]
    assert comments and any("github.com/" in line for line in comments)
    assert any(year in " ".join(comments) for year in ("2017", "2018"))
    name = path.stem.removeprefix("tiny_").removeprefix("mini_").split("_")
    if name[0] in ("omniglot", "imagenet"):
        learner, setting = name[1], name[2]
        ways, shots = SETTINGS[setting]
        assert experiment.learner == {"mamlpp": "maml"}.get(learner, learner)
        assert (experiment.eval_ways, experiment.eval_shots) == (ways, shots)


def test_natural_image_configs_exist_with_the_papers_recipes():
    names = {path.stem for path in CONFIG_FILES}
    for dataset in ("tiny_imagenet", "mini_imagenet"):
        assert {f"{dataset}_{learner}_{setting}" for learner in ("protonet", "maml")
                for setting in ("5w1s", "5w5s")} <= names
    for setting, ways in (("5w1s", 30), ("5w5s", 20)):
        protonet = load(CONFIGS / f"tiny_imagenet_protonet_{setting}.cfg")
        assert (protonet.dataset, protonet.image_size, protonet.ways, protonet.queries) == (
            "tiny_imagenet", 64, ways, 15)
        assert (protonet.lr_decay, protonet.lr_decay_episodes, protonet.meta_batch_size) == (
            "step", 2000, 1)
    maml = load(CONFIGS / "tiny_imagenet_maml_5w1s.cfg")
    assert (maml.filters, maml.inner_steps, maml.inner_learning_rate, maml.eval_inner_steps,
            maml.meta_batch_size) == (32, 5, 0.01, 10, 4)
    text = (CONFIGS / "mini_imagenet_protonet_5w1s.cfg").read_text()
    assert "--dataset=mini_imagenet" in text and "--image_size=84" in text


def test_metaworld_configs_exist_and_hide_the_goal_behind_a_tanh_policy():
    for name, task in (("push", "push-v3"), ("pick_place", "pick-place-v3"),
                       ("reach", "reach-v3")):
        experiment = load(CONFIGS / f"metaworld_ml1_{name}_maml.cfg")
        assert (experiment.dataset, experiment.metaworld_task, experiment.metaworld_benchmark) \
            == ("metaworld", task, "ML1")
        assert (experiment.output_activation, experiment.hidden_units) == ("tanh", (256, 256))
        assert experiment.learner == "maml" and not experiment.first_order
    ml10 = load(CONFIGS / "metaworld_ml10_maml.cfg")
    assert (ml10.metaworld_benchmark, ml10.metaworld_task, ml10.shots) == ("ML10", "all", 5)
    assert ml10.metaworld_starts == "other_tasks"  # New starts: episodes of one task type.
    for name in ("push", "pick_place"):  # Moved-start meta-training (issue 27).
        assert load(CONFIGS / f"metaworld_ml1_{name}_maml.cfg").metaworld_query_starts == "moved"


def test_flags_after_the_flagfile_override_it():
    experiment = load(CONFIGS / "omniglot_protonet_5w1s.cfg", "--train_steps=200", "--ways=20")
    assert experiment.train_steps == 200 and experiment.ways == 20
    assert experiment.test_ways == 5


def test_paper_settings():
    protonet = load(CONFIGS / "omniglot_protonet_5w1s.cfg")
    assert (protonet.ways, protonet.queries, protonet.test_queries) == (60, 5, 15)
    assert (protonet.lr_decay, protonet.lr_decay_episodes, protonet.test_episodes) == (
        "step", 2000, 1000)
    maml = load(CONFIGS / "omniglot_maml_20w1s.cfg")
    assert (maml.meta_batch_size, maml.inner_steps, maml.inner_learning_rate) == (16, 5, 0.1)
    assert load(CONFIGS / "omniglot_fomaml_5w1s.cfg").first_order


def test_the_demo_runs_the_sinusoid_config_with_a_shorter_budget():
    config = load(CONFIGS / "sinusoid_maml.cfg")
    assert dataclasses.replace(config, train_steps=3000) == demo.demo_experiment(3000)


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_reptile_configs_are_supervised_reptiles_readme_commands(setting):
    # openai/supervised-reptile's README (final version): 10 training shots, meta-batch 5,
    # 50 inner steps at test, outer step 1 annealed to 0; 5-way: inner batch 10, 5 steps,
    # Adam 1e-3, 100k iterations; 20-way: batch 20, 10 steps, 5e-4, 200k iterations.
    experiment = load(CONFIGS / f"omniglot_reptile_{setting}.cfg")
    five_way = SETTINGS[setting][0] == 5
    assert (experiment.shots, experiment.meta_batch_size, experiment.eval_inner_steps) == (
        10, 5, 50)
    assert (experiment.inner_batch_size, experiment.inner_steps) == (
        (10, 5) if five_way else (20, 10))
    assert experiment.inner_learning_rate == (0.001 if five_way else 0.0005)
    assert experiment.train_steps == (100_000 if five_way else 200_000)
    assert (experiment.inner_optimizer, experiment.inner_adam_beta_1) == ("adam", 0.0)
    assert (experiment.learning_rate, experiment.final_learning_rate) == (1.0, 0.0)
    assert experiment.lr_decay == "linear" and experiment.transductive
    assert experiment.carry_inner_optimizer_state
