"""Demonstrations from moved starts and moved-start meta-training episodes, on the real
simulator: each moved demonstration starts its object where another goal starts it, the
cache keys them apart, and an episode's support and query starts differ."""

import importlib

import numpy as np
import pytest

from tfmeta import data

simulator = importlib.import_module("tfmeta.data.control.simulator")
demonstrations = importlib.import_module("tfmeta.data.control.demonstrations")

# Push succeeds in about 60 steps; three goals give every goal two donors.
SMALL = {"horizon": 100, "goals_per_type": 3, "verbose": False}
OBJECT = slice(4, 7)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("moved_cache")


@pytest.fixture(scope="module")
def goals():
    return simulator.goals("ML1", ("push-v3",), "train", goals_per_type=3)


@pytest.fixture(scope="module")
def own(cache):
    return data.load_demonstrations("push-v3", "train", demonstrations=2, cache_dir=cache,
                                    **SMALL)


@pytest.fixture(scope="module")
def moved(cache):
    return data.load_demonstrations("push-v3", "train", demonstrations=2, starts="moved",
                                    cache_dir=cache, **SMALL)


@pytest.fixture
def no_simulation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the simulator ran")

    monkeypatch.setattr(simulator, "make_env", refuse)


def test_moved_starts_take_the_next_accepted_goals_object_start(goals):
    vectors = [goal.rand_vec for goal in goals]
    moved = simulator.moved_starts(goals, 3)
    for number, of_goal in enumerate(moved):
        # By hand: the other goals in cyclic order, those whose start lies at least 0.15
        # (x, y) from this goal's goal, repeated when fewer than asked.
        donors = [(number + shift) % 3 for shift in (1, 2)]
        donors = [d for d in donors
                  if np.linalg.norm(vectors[d][:2] - vectors[number][3:5]) >= 0.15]
        assert len(of_goal) == 3
        for attempt, vector in enumerate(of_goal):
            np.testing.assert_array_equal(vector[:3], vectors[donors[attempt % len(donors)]][:3])
            np.testing.assert_array_equal(vector[3:], vectors[number][3:])  # The goal stays.


def test_each_moved_demonstration_starts_at_its_donors_start_with_the_goal_hidden(
        goals, own, moved):
    assert moved.failures.tolist() == [0, 0, 0] and moved.observations.shape == (6, 100, 39)
    assert np.all(moved.observations[..., 36:39] == 0)
    vectors = simulator.moved_starts(goals, 2)
    for goal in range(3):
        own_start = own.observations[own.of_goal(goal)][0, 0, OBJECT]
        for attempt, row in enumerate(moved.of_goal(goal)):
            start = moved.observations[row, 0, OBJECT]
            np.testing.assert_allclose(start[:2], vectors[goal][attempt][:2], atol=1e-6)
            assert np.linalg.norm(start[:2] - own_start[:2]) > 1e-3
        # The goal is the goal's own: the same hidden goal position as its own demonstrations.
        np.testing.assert_array_equal(moved.goal_position[moved.of_goal(goal)],
                                      own.goal_position[own.of_goal(goal)])


def test_the_cache_keys_moved_starts_apart_and_keeps_the_own_key():
    settings = {"benchmark": "ML1", "types": ("push-v3",), "split": "train", "horizon": 200,
                "action_noise": 0.1, "demonstrations": 4, "seed": 0, "goal_seed": 0,
                "goals_per_type": None}
    own_key = demonstrations.cache_key(**settings)
    assert demonstrations.cache_key(**settings, starts="own") == own_key
    assert "starts" not in own_key  # Own-start entries recorded before stay valid.
    moved_key = demonstrations.cache_key(**settings, starts="moved")
    assert moved_key != own_key and '"starts": "moved"' in moved_key
    assert demonstrations.cache_key(**{**settings, "demonstrations": 3},
                                    starts="moved") != moved_key


def test_a_second_moved_load_reads_the_cache(moved, cache, no_simulation):
    again = data.load_demonstrations("push-v3", "train", demonstrations=2, starts="moved",
                                     cache_dir=cache, **SMALL)
    np.testing.assert_array_equal(again.observations, moved.observations)


def test_moved_query_episodes_support_from_the_own_start_query_from_another(own, moved, cache,
                                                                            no_simulation):
    dataset = data.metaworld("push-v3", "train", shots=2, queries=1, meta_batch_size=6,
                             demonstrations=2, query_starts="moved", moved_demonstrations=2,
                             cache_dir=cache, **SMALL)
    assert dataset.element_spec[0]["support_x"].shape == (6, 200, 39)
    assert dataset.element_spec[1].shape == (6, 100, 4)
    for inputs, query_y in dataset.take(2):
        support_x = inputs["support_x"].numpy()
        query_x = inputs["query_x"].numpy()
        assert np.all(support_x[..., 36:] == 0) and np.all(query_x[..., 36:] == 0)
        for episode in range(6):
            demos = [support_x[episode, :100], support_x[episode, 100:]]
            support_rows = [int(np.flatnonzero((own.observations == d).all(axis=(1, 2)))[0])
                            for d in demos]
            query_row = int(np.flatnonzero(
                (moved.observations == query_x[episode]).all(axis=(1, 2)))[0])
            goal = int(own.goal[support_rows[0]])
            # Both own-start demonstrations of one goal, and a moved one of the same goal.
            assert sorted(support_rows) == own.of_goal(goal).tolist()
            assert int(moved.goal[query_row]) == goal
            np.testing.assert_array_equal(query_y[episode], moved.actions[query_row])
            support_start = support_x[episode, 0, OBJECT]
            assert np.linalg.norm(query_x[episode, 0, 4:6] - support_start[:2]) > 1e-3


def test_the_registry_passes_the_moved_start_options(own, moved, cache, monkeypatch,
                                                     no_simulation):
    monkeypatch.setenv("TFMETA_CACHE_DIR", str(cache))
    dataset = data.get_dataset("metaworld").episodes(
        "train", ways=1, shots=1, queries=2, meta_batch_size=2, seed=0,
        metaworld_task="push-v3", metaworld_benchmark="ML1", metaworld_horizon=100,
        metaworld_action_noise=0.1, metaworld_demonstrations=2, metaworld_goals=3,
        metaworld_query_starts="moved", metaworld_moved_demonstrations=2)
    assert dataset.element_spec[1].shape == (2, 200, 4)


@pytest.mark.parametrize("arguments, message", [
    ({"query_starts": "sideways"}, "`query_starts`: expected one of 'own', 'moved'"),
    ({"query_starts": "moved", "queries": 3, "moved_demonstrations": 2},
     "`queries`: expected an integer between 1 and 2 .*moved_demonstrations=2"),
    ({"query_starts": "moved", "shots": 11, "demonstrations": 10},
     "`shots`: expected an integer between 1 and 10"),
    ({"query_starts": "moved", "moved_demonstrations": 0}, "`moved_demonstrations`"),
])
def test_bad_moved_start_settings_are_one_line_before_any_simulation(arguments, message,
                                                                     no_simulation):
    with pytest.raises(ValueError, match=message) as error:
        data.metaworld("push-v3", verbose=False, **arguments)
    assert "\n" not in str(error.value)


def test_load_demonstrations_refuses_unknown_starts(no_simulation):
    with pytest.raises(ValueError, match="`starts`: expected one of 'own', 'moved'"):
        data.load_demonstrations("push-v3", "train", starts="elsewhere", verbose=False)
