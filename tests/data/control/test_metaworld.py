"""Meta-World demonstrations on the real simulator: recording, cache keying, the episode
contract with the goal slots zero, and bad input before any simulation."""

import importlib
import importlib.metadata
from pathlib import Path

import numpy as np
import pytest

from tfmeta import data

simulator = importlib.import_module("tfmeta.data.control.simulator")
demonstrations = importlib.import_module("tfmeta.data.control.demonstrations")

# Reach succeeds in under 100 steps, so 100-step demonstrations of two goals are enough.
SMALL = {"horizon": 100, "demonstrations": 3, "goals_per_type": 2, "verbose": False}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("metaworld_cache")


@pytest.fixture(scope="module")
def reach(shared_cache):
    return data.load_demonstrations("reach-v3", "test", cache_dir=shared_cache, **SMALL)


@pytest.fixture
def no_simulation(monkeypatch):
    """Any attempt to build an environment fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the simulator ran")

    monkeypatch.setattr(simulator, "make_env", refuse)


def test_recording_keeps_successful_demonstrations_with_hidden_goals(reach):
    assert reach.observations.shape == (6, 100, 39) and reach.actions.shape == (6, 100, 4)
    assert reach.observations.dtype == np.float32 and reach.actions.dtype == np.float32
    assert reach.failures.tolist() == [0, 0] and reach.attempts.tolist() == [3, 3]
    assert reach.goal.tolist() == [0, 0, 0, 1, 1, 1]
    assert np.all(reach.observations[..., 36:39] == 0)
    assert np.all(np.abs(reach.actions) <= 1)
    assert np.all((reach.success_step >= 0) & (reach.success_step < 100))
    # Action noise makes the demonstrations of one goal differ after the first step.
    first, second = reach.observations[reach.of_goal(0)][:2]
    np.testing.assert_array_equal(first[0], second[0])
    assert not np.allclose(first[5:], second[5:])


def test_states_are_the_benchmarks_hidden_goal_observations_and_labels_the_expert(reach):
    goal = simulator.goals("ML1", ("reach-v3",), "test", goals_per_type=1)[0]
    env = simulator.make_env("reach-v3", "ML1")
    env.set_task(goal.task)  # The benchmark's own task: goal hidden.
    hidden, _ = env.reset()
    assert np.all(hidden[36:39] == 0)
    np.testing.assert_array_equal(reach.observations[0, 0], hidden.astype(np.float32))
    env.set_task(goal.visible())
    visible, _ = env.reset()
    assert np.any(visible[36:39] != 0)
    np.testing.assert_allclose(reach.goal_position[reach.of_goal(0)], [visible[36:39]] * 3,
                               rtol=1e-6)
    np.testing.assert_array_equal(visible[:36], hidden[:36])
    expected = np.clip(simulator.expert("reach-v3").get_action(visible), -1, 1)
    np.testing.assert_allclose(reach.actions[0, 0], expected, rtol=1e-6)


def test_failed_demonstrations_are_counted_and_dropped(shared_cache):
    # One step is too short for any reach: every attempt fails.
    demos = data.load_demonstrations("reach-v3", "test", horizon=1, demonstrations=2,
                                     goals_per_type=2, cache_dir=shared_cache, verbose=False)
    assert demos.failures.tolist() == [2, 2] and demos.observations.shape == (0, 1, 39)
    with pytest.raises(ValueError, match="shots \\+ queries to be at most 0"):
        data.metaworld("reach-v3", "test", horizon=1, demonstrations=2, goals_per_type=2,
                       cache_dir=shared_cache, verbose=False)


def test_a_second_load_reads_the_cache(reach, shared_cache, no_simulation):
    again = data.load_demonstrations("reach-v3", "test", cache_dir=shared_cache, **SMALL)
    for name, array in reach._asdict().items():
        np.testing.assert_array_equal(getattr(again, name), array)


def test_the_cache_key_holds_the_versions_and_every_setting(monkeypatch):
    settings = {"benchmark": "ML1", "types": ("push-v3",), "split": "train", "horizon": 200,
                "action_noise": 0.1, "demonstrations": 10, "seed": 0, "goal_seed": 0,
                "goals_per_type": None}
    base = demonstrations.cache_key(**settings)
    changes = {"types": ("reach-v3",), "split": "test", "horizon": 100, "action_noise": 0.2,
               "seed": 1, "benchmark": "ML10", "demonstrations": 5, "goals_per_type": 2}
    keys = {demonstrations.cache_key(**{**settings, name: value})
            for name, value in changes.items()}
    assert base not in keys and len(keys) == len(changes)
    monkeypatch.setattr(simulator, "simulator_versions",
                        lambda: {"metaworld": "3.1.1", "mujoco": "3.3.1"})
    assert demonstrations.cache_key(**settings) != base


def test_other_noise_records_again(reach, shared_cache):
    quiet = data.load_demonstrations("reach-v3", "test", cache_dir=shared_cache,
                                     action_noise=0.0, **{**SMALL, "demonstrations": 2})
    # Without noise the expert's demonstrations of a goal are identical.
    np.testing.assert_array_equal(quiet.observations[0], quiet.observations[1])
    assert len(list(Path(shared_cache, "metaworld").glob("*.npz"))) >= 2


def test_episodes_follow_the_regression_contract_with_the_goal_slots_zero(reach, shared_cache,
                                                                          no_simulation):
    spec = data.get_dataset("metaworld")
    assert spec.regression and spec.example_shape({}) == (39,) and spec.targets({}) == (4,)
    dataset = data.metaworld("reach-v3", "test", shots=2, queries=1, meta_batch_size=3,
                             seed=0, cache_dir=shared_cache, **SMALL)
    inputs, query_y = next(iter(dataset))
    assert inputs["support_x"].shape == (3, 200, 39) and inputs["support_y"].shape == (3, 200, 4)
    assert inputs["query_x"].shape == (3, 100, 39) and query_y.shape == (3, 100, 4)
    assert dataset.element_spec[1].shape == (3, 100, 4)  # S and Q are static.
    assert np.all(inputs["support_x"].numpy()[..., 36:] == 0)
    # Each support set is two whole demonstrations of one goal, and the query a third one.
    for support_x, support_y, query_x in zip(inputs["support_x"].numpy(),
                                             inputs["support_y"].numpy(),
                                             inputs["query_x"].numpy()):
        demos = [support_x[:100], support_x[100:], query_x]
        rows = [int(np.flatnonzero((reach.observations == demo).all(axis=(1, 2)))[0])
                for demo in demos]
        assert len(set(rows)) == 3 and len({int(reach.goal[row]) for row in rows}) == 1
        np.testing.assert_array_equal(support_y[:100], reach.actions[rows[0]])


def test_other_tasks_episodes_draw_distinct_demonstrations_across_the_types_goals(
        reach, shared_cache, no_simulation):
    dataset = data.metaworld("reach-v3", "test", shots=2, queries=1, meta_batch_size=8,
                             seed=0, starts="other_tasks", cache_dir=shared_cache, **SMALL)
    inputs, query_y = next(iter(dataset))
    assert inputs["support_x"].shape == (8, 200, 39) and query_y.shape == (8, 100, 4)
    mixed = 0
    for support_x, query_x in zip(inputs["support_x"].numpy(), inputs["query_x"].numpy()):
        rows = [int(np.flatnonzero((reach.observations == demo).all(axis=(1, 2)))[0])
                for demo in (support_x[:100], support_x[100:], query_x)]
        assert len(set(rows)) == 3  # Three different demonstrations of the type ...
        mixed += len({int(reach.goal[row]) for row in rows}) > 1
    # ... drawn across its goals: only 2 of the 20 triples of 6 (2 goals x 3) share a goal
    # ("own" episodes always do).
    assert mixed >= 6


def test_the_registry_builds_it_from_the_flags_options(reach, shared_cache, monkeypatch,
                                                       no_simulation):
    monkeypatch.setenv("TFMETA_CACHE_DIR", str(shared_cache))
    dataset = data.get_dataset("metaworld").episodes(
        "test", ways=1, shots=1, queries=1, meta_batch_size=2, seed=0,
        metaworld_task="reach-v3", metaworld_benchmark="ML1", metaworld_horizon=100,
        metaworld_action_noise=0.1, metaworld_demonstrations=3, metaworld_goals=2)
    assert dataset.element_spec[0]["support_x"].shape == (2, 100, 39)


@pytest.mark.parametrize("arguments, message", [
    ({"task": "push-v9"}, "expected a Meta-World task, one of .*assembly-v3.*reach-v3"),
    ({"task": "push-v3", "benchmark": "ML10", "split": "test"},
     "test task types of ML10 .*which is a train task type of ML10"),
    ({"task": "all", "benchmark": "ML1"}, "one Meta-World task for benchmark 'ML1'"),
    ({"benchmark": "ML2"}, "`benchmark`: expected one of ML1, ML10, ML45"),
    ({"split": "validation"}, "`split`: expected one of train, test"),
    ({"horizon": 0}, "`horizon`: expected an integer between 1 and 500"),
    ({"horizon": 501}, "`horizon`: expected an integer between 1 and 500"),
    ({"action_noise": -0.1}, "`action_noise`: expected a non-negative finite number"),
    ({"shots": 5, "queries": 6, "demonstrations": 10}, "shots \\+ queries to be at most 10"),
    ({"starts": "moved"}, "`starts`: expected one of 'own', 'other_tasks'"),
])
def test_bad_input_is_one_line_before_any_simulation(arguments, message, no_simulation):
    with pytest.raises(ValueError, match=message) as error:
        data.metaworld(**{"verbose": False, **arguments})
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("installed, message", [
    ({"mujoco": "3.3.5"}, "need mujoco==3.3.0, found mujoco==3.3.5 .*pip install metaworld==3.1.1"),
    ({"metaworld": None}, "need metaworld==3.1.1, which is not installed: pip install"),
])
def test_a_missing_or_other_simulator_version_names_the_pip_command(installed, message,
                                                                    monkeypatch, no_simulation):
    real = importlib.metadata.version

    def version(package):
        if package in installed:
            if installed[package] is None:
                raise importlib.metadata.PackageNotFoundError(package)
            return installed[package]
        return real(package)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(ImportError, match=message) as error:
        data.metaworld("push-v3", verbose=False)
    assert "\n" not in str(error.value)
