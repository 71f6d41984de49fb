"""Rollouts in the real simulator: lockstep goals, success and its Wilson interval, moved
starts, the adapt-once policy, and bad input before any simulation."""

import importlib

import numpy as np
import pytest

simulator = importlib.import_module("tfmeta.data.control.simulator")
rollouts = importlib.import_module("tfmeta.data.control.rollouts")
evaluation = importlib.import_module("tfmeta.data.control.evaluation")


@pytest.fixture(scope="module")
def two_goals():
    return simulator.goals("ML1", ("push-v3",), "test", goals_per_type=2)


@pytest.fixture(scope="module")
def three_goals():
    return simulator.goals("ML1", ("push-v3",), "test", goals_per_type=3)


@pytest.fixture
def no_simulation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the simulator ran")

    monkeypatch.setattr(simulator, "make_env", refuse)


@pytest.mark.parametrize("successes, trials, low, high", [
    # By hand, with d = 1 + z^2/n: centre = (p + z^2/2n) / d,
    # half = z sqrt(p(1-p)/n + z^2/4n^2) / d.
    (45, 50, 0.786395, 0.956525),   # p=.9: centre .871460, half .085065
    (0, 10, 0.0, 0.277533),         # p=0: centre = half = .19208 / 1.38416
    (10, 10, 0.722467, 1.0),
    (1, 2, 0.094531, 0.905469),     # p=.5: centre .5, half 1.96 sqrt(.125 + .2401) / 2.9208
])
def test_the_wilson_interval_against_hand_computed_values(successes, trials, low, high):
    lo, hi = rollouts.wilson_interval(successes, trials)
    assert lo == pytest.approx(low, abs=1e-5) and hi == pytest.approx(high, abs=1e-5)


def test_two_goals_step_in_lockstep_with_one_batched_policy_call_per_step(two_goals):
    expert = rollouts.expert_policy(two_goals)
    calls = []

    def policy(observations):
        calls.append(observations.copy())
        return expert(observations)

    outcome = rollouts.rollout(policy, two_goals, horizon=90, goal_visible=True, verbose=False)
    assert len(calls) == 91 and all(batch.shape == (2, 39) for batch in calls)  # probe + 90
    assert outcome.success.tolist() == [True, True]
    assert np.all((outcome.steps_to_success > 0) & (outcome.steps_to_success <= 90))
    assert outcome.hand.shape == (2, 91, 3) and outcome.returns.shape == (2,)
    # The goal the policy saw is the task's goal (x, y from its random vector).
    np.testing.assert_allclose(calls[1][:, 36:39], outcome.goal_positions, rtol=1e-6)
    np.testing.assert_allclose(outcome.goal_positions[:, :2],
                               [g.rand_vec[3:5] for g in two_goals], atol=1e-6)


def test_the_learner_sees_the_goal_slots_zero_and_a_still_arm_never_succeeds(two_goals):
    seen = []

    def still(observations):
        seen.append(observations.copy())
        return np.zeros([len(observations), 4], np.float32)

    outcome = rollouts.rollout(still, two_goals, horizon=20, verbose=False)
    assert all(np.all(batch[1:][:, 36:39] == 0) for batch in seen[1:])
    assert outcome.success.tolist() == [False, False]
    assert outcome.steps_to_success.tolist() == [-1, -1]


def test_moved_starts_put_the_object_where_another_goals_task_starts_it(three_goals):
    still = lambda observations: np.zeros([len(observations), 4], np.float32)  # noqa: E731
    own = rollouts.rollout(still, three_goals, horizon=1, verbose=False)
    moved = rollouts.rollout(still, three_goals, horizon=1, starts="moved", verbose=False)
    starts = np.asarray([g.rand_vec[:2] for g in three_goals])
    np.testing.assert_allclose(own.object_starts[:, :2], starts, atol=1e-6)
    np.testing.assert_allclose(moved.goal_positions, own.goal_positions)
    for number, start in enumerate(moved.object_starts[:, :2]):
        donor = int(np.argmin(np.linalg.norm(starts - start, axis=1)))
        np.testing.assert_allclose(start, starts[donor], atol=1e-6)
        assert donor != number  # Another goal's start, never its own ...
        # ... and one Meta-World accepts for this goal (at least 0.15 away).
        assert np.linalg.norm(start - three_goals[number].rand_vec[3:5]) >= 0.15


def test_nearest_neighbour_replay_memorises_its_own_start_only(tmp_path, monkeypatch):
    monkeypatch.setenv("TFMETA_CACHE_DIR", str(tmp_path))

    def replay(support_x, support_y):
        def policy(observations):
            distances = ((support_x - observations[:, None]) ** 2).sum(-1)
            return support_y[np.arange(len(observations)), distances.argmin(1)]
        return policy

    settings = {"task": "push-v3", "shots": 1, "rollouts": 3, "horizon": 100,
                "demonstrations": 1, "verbose": False}
    own, _ = evaluation.evaluate_rollouts(replay, **settings)
    assert own.to_dict()["metric"] == "success" and own.episodes == 3 and own.shots == 1
    assert own.mean == 1.0 and own.interval == pytest.approx(rollouts.wilson_interval(3, 3))
    assert set(own.to_dict()) >= {"mean", "interval", "episodes", "shots", "starts",
                                  "mean_return", "mean_steps_to_success", "per_task"}
    moved, _ = evaluation.evaluate_rollouts(replay, starts="moved", **settings)
    assert moved.starts == "moved" and moved.mean < own.mean


def test_learner_policy_adapts_once_and_matches_the_learner(two_goals):
    import keras

    import tfmeta

    learner = tfmeta.MAML(tfmeta.backbones.mlp((39,), (8,), 4, output_activation="tanh"),
                          inner_steps=1, inner_learning_rate=0.1)
    learner.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    support_x = rng.normal(size=[2, 6, 39]).astype("float32")
    support_y = rng.uniform(-1, 1, size=[2, 6, 4]).astype("float32")
    observations = rng.normal(size=[2, 39]).astype("float32")
    policy = evaluation.learner_policy(learner, support_x, support_y)
    expected = learner({"support_x": support_x, "support_y": support_y,
                        "query_x": observations[:, None]}, training=False)[:, 0]
    np.testing.assert_allclose(policy(observations), keras.ops.convert_to_numpy(expected),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arguments, message", [
    ({"policy": lambda obs: np.zeros([len(obs), 3])}, "expected actions of shape \\[2, 4\\]"),
    ({"horizon": 0}, "`horizon`: expected an integer between 1 and 500"),
    ({"starts": "elsewhere"}, "`starts`: expected one of 'own', 'moved'"),
    ({"goals": 1, "starts": "moved"}, "no other goal of the task type starts its object"),
])
def test_bad_input_is_one_line_before_any_simulation(arguments, message, two_goals,
                                                     no_simulation):
    goals = two_goals[:arguments.pop("goals", 2)]
    policy = arguments.pop("policy", lambda obs: np.zeros([len(obs), 4]))
    with pytest.raises(ValueError, match=message) as error:
        rollouts.rollout(policy, goals, verbose=False, **arguments)
    assert "\n" not in str(error.value)


def test_evaluation_refuses_more_rollouts_than_goals_before_simulating(no_simulation):
    with pytest.raises(ValueError, match="`rollouts`: expected at most 50"):
        evaluation.evaluate_rollouts(lambda x, y: None, task="reach-v3", rollouts=51)
    with pytest.raises(ValueError, match="`shots`: expected an integer between 1 and 10"):
        evaluation.evaluate_rollouts(lambda x, y: None, task="reach-v3", shots=11)


def test_other_tasks_starts_adapt_on_sibling_tasks_and_roll_out_from_the_goals_own_start(
        tmp_path, monkeypatch):
    monkeypatch.setenv("TFMETA_CACHE_DIR", str(tmp_path))
    settings = {"task": "push-v3", "rollouts": 2, "horizon": 60, "demonstrations": 2,
                "verbose": False}
    supports = []

    def replay(support_x, support_y):
        supports.append(support_x)
        def policy(observations):
            distances = ((support_x - observations[:, None]) ** 2).sum(-1)
            return support_y[np.arange(len(observations)), distances.argmin(1)]
        return policy

    result, outcome = evaluation.evaluate_rollouts(replay, shots=1, starts="other_tasks",
                                                   **settings)
    assert result.starts == "other_tasks" and result.episodes == 2 and result.shots == 1
    demos = evaluation.load_demonstrations("push-v3", "test", horizon=60, demonstrations=2,
                                           goals_per_type=2, verbose=False)
    # Goal 0 adapts on goal 1's first demonstration and goal 1 on goal 0's, never its own.
    np.testing.assert_array_equal(supports[0][0], demos.observations[demos.of_goal(1)[0]])
    np.testing.assert_array_equal(supports[0][1], demos.observations[demos.of_goal(0)[0]])
    # The rollout starts at each goal's own start (its own object start and goal).
    two = simulator.goals("ML1", ("push-v3",), "test", goals_per_type=2)
    np.testing.assert_allclose(outcome.object_starts[:, :2], [g.rand_vec[:2] for g in two],
                               atol=1e-6)
    np.testing.assert_allclose(outcome.goal_positions[:, :2], [g.rand_vec[3:5] for g in two],
                               atol=1e-6)


def test_other_tasks_support_rows_take_one_demonstration_of_each_next_sibling():
    demos = evaluation.Demonstrations(
        None, None, np.array([0, 0, 1, 2, 2, 3, 4]), None, None, None, None,
        np.array(["a-v3/0", "a-v3/1", "a-v3/2", "b-v3/0", "b-v3/1"]))
    assert evaluation.support_rows(demos, 0, 2, "other_tasks").tolist() == [2, 3]
    assert evaluation.support_rows(demos, 2, 2, "other_tasks").tolist() == [0, 2]
    # Never the goal's own, never another type's: b-v3/0 has one sibling only.
    assert evaluation.support_rows(demos, 3, 2, "other_tasks").tolist() == [6]
    assert evaluation.support_rows(demos, 0, 2, "own").tolist() == [0, 1]
    demos = demos._replace(observations=np.zeros([7, 3, 39]), actions=np.zeros([7, 3, 4]))
    with pytest.warns(UserWarning, match="2 goals have fewer than 2 successful support"):
        support_x, _, kept = evaluation.support_sets(demos, 2, "other_tasks")
    assert kept.tolist() == [0, 1, 2] and support_x.shape == (3, 6, 39)


@pytest.mark.parametrize("arguments, message", [
    ({"starts": "elsewhere"}, "`starts`: expected one of 'own', 'moved', 'other_tasks'"),
    ({"starts": "other_tasks", "shots": 50},
     "`shots`: expected an integer between 1 and 49 \\(starts='other_tasks' takes one"),
    ({"starts": "own", "shots": 11}, "`shots`: expected an integer between 1 and 10"),
])
def test_other_tasks_bad_input_is_one_line_before_any_simulation(arguments, message,
                                                                 no_simulation):
    with pytest.raises(ValueError, match=message) as error:
        evaluation.evaluate_rollouts(lambda x, y: None, task="reach-v3", **arguments)
    assert "\n" not in str(error.value)
