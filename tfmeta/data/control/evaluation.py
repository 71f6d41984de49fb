"""Few-shot imitation evaluated in the simulator: adapt once on K demonstrations, act.

For each held-out goal, `evaluate_rollouts` takes K recorded demonstrations (`starts`
says whose: see `STARTS`), builds one policy for all goals from them (a learner adapts
once: `learner_policy`), runs the goals in lockstep for `horizon` steps and reports the
success rate with its 95% Wilson interval, the mean return and the steps to success.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import check_choice, check_int_in_range
from tfmeta.data.control import rollouts as rollouts_lib
from tfmeta.data.control import simulator
from tfmeta.data.control.demonstrations import Demonstrations, load_demonstrations

# Where the rollout starts, relative to the K demonstrations it adapts on:
# - "own": demonstrations of the goal, from its own start; the rollout starts there too
#   (the standard protocol, where replaying the demonstrations succeeds);
# - "moved": demonstrations of the goal from its own start; the rollout's object starts
#   where another goal's task starts it (`rollouts.start_vectors`);
# - "other_tasks": one demonstration of each of K OTHER tasks of the goal's type (other
#   object starts and goals), none of the goal itself; the rollout starts at the goal's
#   own start (ML10's "new starts": a held-out task known only through its siblings).
STARTS = (*rollouts_lib.STARTS, "other_tasks")

# make_policy(support_x [G, K*H, 39], support_y [G, K*H, 4]) -> policy([G, 39]) -> [G, 4]
PolicyFactory = Callable[[np.ndarray, np.ndarray], rollouts_lib.Policy]


@dataclasses.dataclass(frozen=True)
class RolloutResult:
    """Success of few-shot imitation over goals, with its 95% Wilson interval.

    Example:
    >>> print(RolloutResult(mean=0.9, interval=(0.7864, 0.9565), episodes=50, shots=1,
    ...                     starts="own", task="push-v3", benchmark="ML1", horizon=200,
    ...                     mean_return=1234.5, mean_steps_to_success=71.0))
    success: 0.9000 [0.7864, 0.9565] (95% Wilson, 50 rollouts, 1-shot, push-v3 ML1, own starts)
    """

    mean: float
    interval: tuple[float, float]
    episodes: int
    shots: int
    starts: str
    task: str
    benchmark: str
    horizon: int
    mean_return: float
    mean_steps_to_success: float | None
    per_task: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    metric: str = "success"

    def __str__(self) -> str:
        low, high = self.interval
        return (f"{self.metric}: {self.mean:.4f} [{low:.4f}, {high:.4f}] (95% Wilson, "
                f"{self.episodes} rollouts, {self.shots}-shot, {self.task} {self.benchmark}, "
                f"{self.starts} starts)")

    def to_dict(self) -> dict[str, Any]:
        """`{"metric": "success", "mean", "interval": [lo, hi], "episodes", "shots", ...}`."""
        result = dataclasses.asdict(self)
        result["interval"] = list(self.interval)
        return {"metric": result.pop("metric"), **result}

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Writes `to_dict()` as JSON to `path` (parent folders created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path


def summarize(outcome: rollouts_lib.Rollouts, goal_names: list[str], **settings: Any
              ) -> RolloutResult:
    """The `RolloutResult` of `outcome` (one rollout per goal), overall and per task type."""
    successes = int(outcome.success.sum())
    trials = int(outcome.success.size)
    per_task = {}
    types = [name.split("/")[0] for name in goal_names]
    for env_name in dict.fromkeys(types):
        chosen = np.asarray([kind == env_name for kind in types])
        wins = int(outcome.success[chosen].sum())
        per_task[env_name] = {"mean": wins / int(chosen.sum()), "episodes": int(chosen.sum()),
                              "interval": list(rollouts_lib.wilson_interval(
                                  wins, int(chosen.sum())))}
    steps = outcome.steps_to_success[outcome.success]
    return RolloutResult(
        mean=successes / trials, interval=rollouts_lib.wilson_interval(successes, trials),
        episodes=trials, mean_return=float(outcome.returns.mean()),
        mean_steps_to_success=float(steps.mean()) if steps.size else None,
        per_task=per_task, **settings)


def support_rows(demos: Demonstrations, goal: int, shots: int, starts: str = "own"
                 ) -> np.ndarray:
    """The rows of `demos` that form goal `goal`'s support set (fewer if too few exist).

    "own" and "moved": the goal's first `shots` demonstrations. "other_tasks": the first
    demonstration of each of the `shots` goals that follow `goal` among the recorded goals
    of its task type (cyclically, skipping goals without a successful demonstration),
    never one of `goal` itself.

    Example (three goals of one type, two demonstrations each):
    >>> demos = Demonstrations(*[None] * 2, np.array([0, 0, 1, 1, 2, 2]), *[None] * 4,
    ...                        np.array(["push-v3/0", "push-v3/1", "push-v3/2"]))
    >>> support_rows(demos, 2, 2).tolist(), support_rows(demos, 2, 2, "other_tasks").tolist()
    ([4, 5], [0, 2])
    """
    if starts != "other_tasks":
        return demos.of_goal(goal)[:shots]
    types = [str(name).split("/")[0] for name in demos.goal_names]
    siblings = [other for other in range(len(types)) if types[other] == types[goal]]
    position = siblings.index(goal)
    rows = []
    for shift in range(1, len(siblings)):
        donor = demos.of_goal(siblings[(position + shift) % len(siblings)])
        if donor.size:
            rows.append(donor[0])
        if len(rows) == shots:
            break
    return np.asarray(rows, dtype=np.int64)


def support_sets(demos: Demonstrations, shots: int, starts: str = "own"
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every goal's support set (`support_rows`), stacked.

    Returns:
        `(support_x [G', K*H, 39], support_y [G', K*H, 4], goals [G'])`: the goals with a
        full support set of `shots` successful demonstrations (others are left out with a
        warning).
    """
    xs, ys, kept = [], [], []
    for goal in range(len(demos.goal_names)):
        rows = support_rows(demos, goal, shots, starts)
        if rows.size < shots:
            continue
        xs.append(demos.observations[rows].reshape([-1, simulator.OBSERVATION_DIM]))
        ys.append(demos.actions[rows].reshape([-1, simulator.ACTION_DIM]))
        kept.append(goal)
    if len(kept) < len(demos.goal_names):
        warnings.warn(f"{len(demos.goal_names) - len(kept)} goals have fewer than {shots} "
                      f"successful support demonstrations ({starts} starts) and are left out "
                      "of the rollouts.", stacklevel=2)
    if not kept:
        raise ValueError(f"Invalid value for argument `shots`: no goal has {shots} successful "
                         f"support demonstrations ({starts} starts). Received: shots={shots}")
    return np.stack(xs), np.stack(ys), np.asarray(kept)


def learner_policy(learner: Any, support_x: np.ndarray, support_y: np.ndarray
                   ) -> rollouts_lib.Policy:
    """Adapts `learner` once to every goal's support set; the policy then only predicts.

    Uses `learner.adapt_step` / `learner.predict_adapted_step` (the adapt-once interface);
    a learner without them adapts at every call through `learner(episode)` instead.
    """
    support_x = tf.constant(support_x, tf.float32)
    support_y = tf.constant(support_y, tf.float32)
    if hasattr(learner, "adapt_step") and hasattr(learner, "predict_adapted_step"):
        task_state = learner.adapt_step(support_x, support_y)
        step = tf.function(lambda observations: learner.predict_adapted_step(
            task_state, observations[:, tf.newaxis])[:, 0], reduce_retracing=True)
    else:
        step = tf.function(lambda observations: learner(
            {"support_x": support_x, "support_y": support_y,
             "query_x": observations[:, tf.newaxis]}, training=False)[:, 0],
            reduce_retracing=True)

    def policy(observations: np.ndarray) -> np.ndarray:
        return step(tf.constant(observations, tf.float32)).numpy()

    return policy


def test_goals(task: str | None, benchmark: str, rollouts: int) -> tuple[tuple[str, ...], int]:
    """The held-out task types and how many goals of each type `rollouts` needs."""
    types = simulator.check_task(task, benchmark, "test")
    rollouts = check_int_in_range("rollouts", rollouts)
    per_type = math.ceil(rollouts / len(types))
    return types, per_type


def check_support(shots: int, starts: str, demonstrations: int, per_type: int) -> int:
    """Checks `shots` and `starts`; returns how many goals of each type to record.

    "other_tasks" takes one demonstration from each of `shots` other goals of the type, so
    it records at least `shots + 1` goals of each type (at most the 50 a type has).
    """
    check_choice("starts", starts, STARTS)
    if starts != "other_tasks":
        check_int_in_range("shots", shots, 1, demonstrations,
                           f"demonstrations={demonstrations} are recorded per goal")
        return per_type
    check_int_in_range("shots", shots, 1, simulator.GOALS_PER_TYPE - 1,
                       "starts='other_tasks' takes one demonstration from each of `shots` "
                       f"other tasks of the type, which has {simulator.GOALS_PER_TYPE}")
    return max(per_type, shots + 1)


def evaluate_rollouts(
    make_policy: PolicyFactory,
    *,
    task: str | None = "push-v3",
    benchmark: str = "ML1",
    shots: int = 1,
    rollouts: int = 50,
    horizon: int = 200,
    starts: str = "own",
    action_noise: float = 0.1,
    demonstrations: int = 10,
    seed: int = 0,
    goal_seed: int = 0,
    goal_visible: bool = False,
    verbose: bool = True,
) -> tuple[RolloutResult, rollouts_lib.Rollouts]:
    """Adapts to K demonstrations of each held-out goal and rolls the policy out.

    The demonstrations are recorded and cached as `tfmeta.data.metaworld`'s test split.
    With `starts="own"` they are K demonstrations of the goal from its own start, where the
    rollout starts too; with "moved" the rollout's object starts where another goal's task
    starts it; with "other_tasks" they are one demonstration of each of K other tasks of
    the goal's type and the rollout starts at the goal's own start (see `STARTS`).

    Args:
        make_policy: Builds one policy for all goals from their support sets
            (`learner_policy(learner, ...)` for a meta-learner).
        task: The task type (ML1), or None / "all" (ML10, ML45: the held-out types).
        benchmark: "ML1", "ML10" or "ML45".
        shots: Demonstrations per goal, K.
        rollouts: Goals to roll out (one rollout each), spread over the task types.
        horizon: Steps of demonstrations and rollouts.
        starts: "own", "moved" or "other_tasks" (see `STARTS`).
        action_noise: The demonstrations' action noise.
        demonstrations: Demonstrations recorded per goal (at least `shots`, except with
            "other_tasks").
        seed: Seed of the demonstrations' noise.
        goal_seed: The benchmark's seed.
        goal_visible: Give the policy the goal-visible observations (ceilings only: the
            scripted expert, goal-visible behaviour cloning).
        verbose: Progress bars.

    Returns:
        `(RolloutResult, Rollouts)`.

    Raises:
        ValueError: Before any simulation, for bad settings.
    """
    types, per_type = test_goals(task, benchmark, rollouts)
    recorded = check_support(shots, starts, demonstrations, per_type)
    available = len(simulator.goals(benchmark, types, "test", goal_seed, per_type))
    if available < rollouts:
        raise ValueError(
            f"Invalid value for argument `rollouts`: expected at most {available} (the test "
            f"goals of {', '.join(types)} in {benchmark}). Received: rollouts={rollouts}")
    demos = load_demonstrations(
        task, "test", benchmark=benchmark, horizon=horizon, action_noise=action_noise,
        demonstrations=demonstrations, seed=seed, goal_seed=goal_seed,
        goals_per_type=recorded, verbose=verbose)
    goals = simulator.goals(benchmark, types, "test", goal_seed, recorded)
    support_x, support_y, kept = support_sets(demos, shots, starts)
    # Round-robin over the task types, then the first `rollouts`.
    order = sorted(range(len(kept)), key=lambda i: (goals[kept[i]].index, i))[:rollouts]
    support_x, support_y, kept = support_x[order], support_y[order], kept[order]
    chosen = [goals[i] for i in kept]
    policy = make_policy(support_x, support_y)
    outcome = rollouts_lib.rollout(policy, chosen, benchmark=benchmark, horizon=horizon,
                                   starts="own" if starts == "other_tasks" else starts,
                                   goal_seed=goal_seed,
                                   goal_visible=goal_visible, verbose=verbose)
    result = summarize(outcome, [str(demos.goal_names[i]) for i in kept], shots=shots,
                       starts=starts, task=task or simulator.ALL_TASKS, benchmark=benchmark,
                       horizon=horizon)
    return result, outcome
