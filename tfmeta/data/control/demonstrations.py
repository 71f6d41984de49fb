"""Expert demonstrations recorded in the Meta-World simulator, cached on disk.

Each demonstration runs one goal for exactly `horizon` steps from the goal's own start (or,
with `starts="moved"`, from other goals' object starts, one start per demonstration): the
scripted expert sees the goal-visible observation, the environment steps the expert's
action plus Gaussian noise (so demonstrations of one goal differ), and each visited state is
stored with the goal slots zeroed beside the expert's noise-free action there (the label).
A demonstration that never succeeds is counted and dropped. Recording continues past the
first success (the expert keeps the object at the goal), so every demonstration has
`horizon` real state-action pairs and episodes need no padding.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import NamedTuple

import keras
import numpy as np

from tfmeta.data import array_cache
from tfmeta.data.arguments import check_choice, check_int_in_range, invalid_value
from tfmeta.data.control import simulator
from tfmeta.data.data_dir import resolve_cache_dir

_CACHE_FORMAT = 2
STARTS = ("own", "moved")
# Recordings expected to take longer than this many simulator steps show a progress bar.
PROGRESS_STEPS = 5_000


class Demonstrations(NamedTuple):
    """Successful demonstrations of some goals, goal by goal.

    Attributes:
        observations: `[N, horizon, 39]` float32 visited states, goal slots zero.
        actions: `[N, horizon, 4]` float32 expert actions in [-1, 1] at those states.
        goal: `[N]` int32 goal (row of `goal_names`) of each demonstration.
        success_step: `[N]` int32 first step whose transition succeeded.
        goal_position: `[N, 3]` float32 the hidden goal slots (for goal-visible ceilings).
        attempts: `[G]` int32 demonstrations recorded per goal.
        failures: `[G]` int32 of them that never succeeded (dropped).
        goal_names: `[G]` str, `"<task type>/<index>"`.
    """

    observations: np.ndarray
    actions: np.ndarray
    goal: np.ndarray
    success_step: np.ndarray
    goal_position: np.ndarray
    attempts: np.ndarray
    failures: np.ndarray
    goal_names: np.ndarray

    def of_goal(self, goal: int) -> np.ndarray:
        """The rows of goal `goal`'s demonstrations."""
        return np.flatnonzero(self.goal == goal)


def check_recording(horizon: int, action_noise: float, demonstrations: int) -> None:
    """Checks the recording settings (before any simulation)."""
    check_int_in_range("horizon", horizon, 1, simulator.MAX_HORIZON,
                       "Meta-World truncates an episode after 500 steps")
    check_int_in_range("demonstrations", demonstrations)
    if (isinstance(action_noise, bool) or not isinstance(action_noise, (int, float))
            or not 0 <= action_noise < np.inf):
        raise invalid_value("action_noise", "a non-negative finite number (the standard "
                            "deviation of the Gaussian action noise)", action_noise)


def record_goal(goal: simulator.Goal, env, policy, *, horizon: int, action_noise: float,
                demonstrations: int, seed: int, rand_vecs: list[np.ndarray] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Records `demonstrations` attempts of one goal.

    With `rand_vecs` (one random vector per attempt: the object moved, the goal kept),
    attempt `i` starts from `rand_vecs[i]` and draws its own noise stream; without, every
    attempt starts from the goal's own start.

    Returns:
        `(observations [D, H, 39], actions [D, H, 4], success_step [D], goal [3])`,
        success_step -1 for an attempt that never succeeded; `goal` is what the goal slots
        held.
    """
    observations = np.zeros([demonstrations, horizon, simulator.OBSERVATION_DIM], np.float32)
    actions = np.zeros([demonstrations, horizon, simulator.ACTION_DIM], np.float32)
    success_step = np.full([demonstrations], -1, np.int32)
    visible = goal.visible()
    for attempt in range(demonstrations):
        stream = [seed, goal.index, attempt, _type_id(goal.env_name)]
        if rand_vecs is not None:
            stream.append(1)  # Moved starts: noise independent of the own-start attempts.
            visible = goal.visible(rand_vecs[attempt])
        rng = np.random.default_rng(stream)
        env.set_task(visible)
        observation, _ = env.reset()
        for step in range(horizon):
            action = simulator.expert_action(policy, observation)
            observations[attempt, step] = observation
            actions[attempt, step] = action
            noisy = np.clip(action + action_noise * rng.standard_normal(action.shape), -1, 1)
            observation, _, _, _, info = env.step(noisy.astype(np.float32))
            if info["success"] and success_step[attempt] < 0:
                success_step[attempt] = step
    goal_position = observations[0, 0, simulator.GOAL_SLOTS].copy()
    observations[..., simulator.GOAL_SLOTS] = 0.0
    return observations, actions, success_step, goal_position


def record(goals: list[simulator.Goal], *, benchmark: str, horizon: int, action_noise: float,
           demonstrations: int, seed: int, goal_seed: int = 0, starts: str = "own",
           verbose: bool = True) -> Demonstrations:
    """Records `demonstrations` attempts of every goal and keeps the successful ones.

    `starts="moved"`: attempt `i` of a goal starts its object where the `i`-th next goal of
    the same type starts it (`simulator.moved_starts`), so a goal's demonstrations come from
    `demonstrations` different starts, none its own.
    """
    moved = simulator.moved_starts(goals, demonstrations) if starts == "moved" else None
    rows = {"observations": [], "actions": [], "goal": [], "success_step": [],
            "goal_position": []}
    attempts, failures = [], []
    envs, policies = {}, {}
    total = len(goals) * demonstrations * horizon
    progress = (keras.utils.Progbar(len(goals), unit_name="goal")
                if verbose and total > PROGRESS_STEPS else None)
    if progress is not None:
        print(f"Recording {len(goals)} x {demonstrations} Meta-World demonstrations of "
              f"{horizon} steps (cached afterwards):", flush=True)
    for number, goal in enumerate(goals):
        if goal.env_name not in envs:
            envs[goal.env_name] = simulator.make_env(goal.env_name, benchmark, goal_seed)
            policies[goal.env_name] = simulator.expert(goal.env_name)
        observations, actions, success_step, goal_position = record_goal(
            goal, envs[goal.env_name], policies[goal.env_name], horizon=horizon,
            action_noise=action_noise, demonstrations=demonstrations, seed=seed,
            rand_vecs=None if moved is None else moved[number])
        kept = success_step >= 0
        rows["observations"].append(observations[kept])
        rows["actions"].append(actions[kept])
        rows["success_step"].append(success_step[kept])
        rows["goal"].append(np.full([int(kept.sum())], number, np.int32))
        rows["goal_position"].append(np.tile(goal_position, [int(kept.sum()), 1]))
        attempts.append(demonstrations)
        failures.append(int((~kept).sum()))
        if progress is not None:
            progress.update(number + 1)
    for env in envs.values():
        env.close()
    return Demonstrations(
        observations=np.concatenate(rows["observations"]),
        actions=np.concatenate(rows["actions"]),
        goal=np.concatenate(rows["goal"]),
        success_step=np.concatenate(rows["success_step"]),
        goal_position=np.concatenate(rows["goal_position"]).reshape([-1, 3]),
        attempts=np.asarray(attempts, np.int32),
        failures=np.asarray(failures, np.int32),
        goal_names=np.asarray([f"{goal.env_name}/{goal.index}" for goal in goals]),
    )


def cache_key(*, benchmark: str, types: tuple[str, ...], split: str, horizon: int,
              action_noise: float, demonstrations: int, seed: int, goal_seed: int,
              goals_per_type: int | None, starts: str = "own") -> str:
    """What a recording is built from: simulator versions and every recording setting.

    `starts` enters the key only when it is not "own", so own-start recordings keep the
    key (and the cache entries) they had before moved starts existed.

    Example:
    >>> key = cache_key(benchmark="ML1", types=("push-v3",), split="train", horizon=200,
    ...                 action_noise=0.1, demonstrations=10, seed=0, goal_seed=0,
    ...                 goals_per_type=None)
    >>> json.loads(key)["versions"]["mujoco"]
    '3.3.0'
    """
    settings = {
        "format": _CACHE_FORMAT, "versions": simulator.simulator_versions(),
        "benchmark": benchmark, "tasks": list(types), "split": split, "horizon": horizon,
        "action_noise": float(action_noise), "demonstrations": demonstrations, "seed": seed,
        "goal_seed": goal_seed, "goals_per_type": goals_per_type,
    }
    if starts != "own":
        settings["starts"] = starts
    return json.dumps(settings, sort_keys=True)


def load_demonstrations(
    task: str | None = "push-v3",
    split: str = "train",
    *,
    benchmark: str = "ML1",
    horizon: int = 200,
    action_noise: float = 0.1,
    demonstrations: int = 10,
    seed: int = 0,
    goal_seed: int = 0,
    goals_per_type: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    verbose: bool = True,
    starts: str = "own",
) -> Demonstrations:
    """The demonstrations of every goal of `task` in `benchmark`'s `split`, recorded once.

    The recording is cached (`tfmeta.data.array_cache`) under
    `<cache>/metaworld/<hash>.npz`, keyed on the metaworld and mujoco versions and on every
    argument, so a second call reads it back without simulating.

    Args:
        task: A task type ("push-v3"), or None / "all" for every type of the split
            (ML10, ML45).
        split: "train" or "test" goals (ML1), or task types (ML10, ML45).
        benchmark: "ML1", "ML10" or "ML45".
        horizon: Steps of each demonstration (1..500).
        action_noise: Standard deviation of the Gaussian noise added to the expert's
            actions when stepping (not to the labels).
        demonstrations: Attempts recorded per goal (failures are dropped).
        seed: Seed of the action noise.
        goal_seed: Seed of the benchmark (which goals it draws).
        goals_per_type: Record only the first this many goals of each type (default: all).
        cache_dir: The cache folder (default: `tfmeta.data.resolve_cache_dir()`).
        verbose: Show a progress bar when recording takes more than a few seconds.
        starts: "own" (every attempt from the goal's own start) or "moved" (attempt `i`
            with the object where the `i`-th next goal of the type starts it; see
            `record`): demonstrations of a goal from starts its test rollout never has.

    Returns:
        `Demonstrations`.

    Example:
    >>> demos = load_demonstrations("reach-v3", "test", horizon=20, demonstrations=1,
    ...                             goals_per_type=1, verbose=False)
    >>> demos.observations.shape[1:], float(abs(demos.observations[..., 36:]).max())
    ((20, 39), 0.0)
    """
    types = simulator.check_task(task, benchmark, split)
    check_recording(horizon, action_noise, demonstrations)
    check_choice("starts", starts, STARTS)
    if goals_per_type is not None:
        goals_per_type = check_int_in_range("goals_per_type", goals_per_type)
        if goals_per_type >= simulator.GOALS_PER_TYPE:
            goals_per_type = None  # All of them: one cache entry, however it is asked for.
    key = cache_key(benchmark=benchmark, types=types, split=split, horizon=horizon,
                    action_noise=action_noise, demonstrations=demonstrations, seed=int(seed),
                    goal_seed=int(goal_seed), goals_per_type=goals_per_type, starts=starts)
    name = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    path = resolve_cache_dir(cache_dir) / "metaworld" / f"{name}.npz"

    def build() -> dict[str, np.ndarray]:
        chosen = simulator.goals(benchmark, types, split, goal_seed, goals_per_type)
        return record(chosen, benchmark=benchmark, horizon=horizon, action_noise=action_noise,
                      demonstrations=demonstrations, seed=int(seed), goal_seed=goal_seed,
                      starts=starts, verbose=verbose)._asdict()

    arrays = array_cache.cached_arrays(
        path, key=key, build=build,
        shapes={"observations": (None, horizon, simulator.OBSERVATION_DIM),
                "actions": (None, horizon, simulator.ACTION_DIM)})
    return Demonstrations(**arrays)


def _type_id(env_name: str) -> int:
    return int.from_bytes(hashlib.blake2b(env_name.encode(), digest_size=4).digest(), "little")
