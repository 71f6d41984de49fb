"""Closed-loop rollouts of a policy in Meta-World, every goal stepping in lockstep.

A policy maps a batch of goal-hidden observations `[G, 39]` (one per goal) to actions
`[G, 4]`; `rollout` calls it once per step for all goals together. A goal succeeds if any
step's `info["success"]` is true; `success_interval` gives the 95% Wilson interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import keras
import numpy as np

from tfmeta.data.arguments import check_choice, check_int_in_range
from tfmeta.data.control import simulator

STARTS = ("own", "moved")
# Rollouts expected to take longer than this many simulator steps show a progress bar.
PROGRESS_STEPS = 5_000
# Meta-World keeps an object start at least this far (x, y) from the goal.
MIN_DISTANCE = simulator.MIN_START_DISTANCE

Policy = Callable[[np.ndarray], np.ndarray]


class Rollouts(NamedTuple):
    """What happened in one rollout of each goal.

    Attributes:
        success: `[G]` bool, success at any step.
        returns: `[G]` float, the sum of the rewards.
        steps_to_success: `[G]` int, the first successful step plus one (-1: never).
        hand: `[G, horizon + 1, 3]` end-effector positions (`obs[0:3]`), start included.
        goal_positions: `[G, 3]` the hidden goals (from the goal-visible observation).
        object_starts: `[G, 3]` where the object started (`obs[4:7]` at reset).
    """

    success: np.ndarray
    returns: np.ndarray
    steps_to_success: np.ndarray
    hand: np.ndarray
    goal_positions: np.ndarray
    object_starts: np.ndarray


def expert_policy(goals: Sequence[simulator.Goal]) -> Policy:
    """The scripted experts of `goals` as one policy (needs `goal_visible=True`)."""
    experts = [simulator.expert(goal.env_name) for goal in goals]

    def policy(observations: np.ndarray) -> np.ndarray:
        return np.stack([simulator.expert_action(expert, observation.astype(np.float64))
                         for expert, observation in zip(experts, observations)])

    return policy


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a success rate (95% for z=1.96).

    Example:
    >>> [round(bound, 4) for bound in wilson_interval(45, 50)]
    [0.7864, 0.9565]
    """
    check_int_in_range("trials", trials)
    check_int_in_range("successes", successes, 0, trials)
    rate = successes / trials
    denominator = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def start_vectors(goals: Sequence[simulator.Goal], starts: str = "own") -> list[np.ndarray]:
    """Each goal's random vector: its own, or ("moved") with the next goal's object start.

    "moved" keeps each goal and takes the object start from the next goal of the same
    type whose start Meta-World accepts (`tfmeta.data.control.simulator.moved_starts`),
    so no rollout starts where its goal's demonstrations started.
    """
    check_choice("starts", starts, STARTS)
    if starts == "own":
        return [goal.rand_vec for goal in goals]
    return [vectors[0] for vectors in simulator.moved_starts(goals, 1)]


def rollout(policy: Policy, goals: Sequence[simulator.Goal], *, benchmark: str = "ML1",
            horizon: int = 200, starts: str = "own", goal_seed: int = 0,
            goal_visible: bool = False, verbose: bool = True) -> Rollouts:
    """Runs `policy` closed loop for `horizon` steps on every goal at once.

    Args:
        policy: Maps goal-hidden observations `[G, 39]` float32 to actions `[G, 4]`
            (clipped to [-1, 1] before stepping); called once per step.
        goals: The goals (`tfmeta.data.control.simulator.goals`).
        benchmark: The benchmark the goals come from.
        horizon: Steps per rollout (1..500).
        starts: "own" (each goal's start) or "moved" (see `start_vectors`).
        goal_seed: The benchmark's seed.
        goal_visible: Give the policy the goal-visible observations (for the ceilings:
            the scripted expert, goal-visible behaviour cloning); default: goal hidden.
        verbose: Progress bar on long rollouts.

    Raises:
        ValueError: Before any simulation, for a bad horizon or starts, or a policy whose
            output is not `[G, 4]`.
    """
    horizon = check_int_in_range("horizon", horizon, 1, simulator.MAX_HORIZON,
                                 "Meta-World truncates an episode after 500 steps")
    count = len(goals)
    check_int_in_range("goals", count)
    vectors = start_vectors(goals, starts)
    probe = np.asarray(policy(np.zeros([count, simulator.OBSERVATION_DIM], np.float32)))
    if probe.shape != (count, simulator.ACTION_DIM):
        raise ValueError(
            f"Invalid policy: expected actions of shape [{count}, {simulator.ACTION_DIM}] for "
            f"{count} observations [{count}, {simulator.OBSERVATION_DIM}] (Meta-World's action "
            f"shape). Received: shape={list(probe.shape)}"
        )
    environments, observations, goal_positions = [], [], []
    for goal, vector in zip(goals, vectors):
        env = simulator.make_env(goal.env_name, benchmark, goal_seed)
        env.set_task(goal.visible(vector))
        visible, _ = env.reset()
        goal_positions.append(visible[simulator.GOAL_SLOTS].copy())
        environments.append(env)
        observations.append(visible)
    observations = np.stack(observations)
    object_starts = observations[:, 4:7].copy()
    hand = np.zeros([count, horizon + 1, 3])
    hand[:, 0] = observations[:, :3]
    returns = np.zeros([count])
    steps_to_success = np.full([count], -1)
    progress = (keras.utils.Progbar(horizon, unit_name="step")
                if verbose and count * horizon > PROGRESS_STEPS else None)
    for step in range(horizon):
        seen = (observations.astype(np.float32) if goal_visible
                else simulator.hide_goal(observations))
        actions = np.clip(np.asarray(policy(seen)), -1, 1)
        for number, env in enumerate(environments):
            observation, reward, _, _, info = env.step(actions[number].astype(np.float32))
            observations[number] = observation
            returns[number] += reward
            if info["success"] and steps_to_success[number] < 0:
                steps_to_success[number] = step + 1
        hand[:, step + 1] = observations[:, :3]
        if progress is not None:
            progress.update(step + 1)
    for env in environments:
        env.close()
    return Rollouts(success=steps_to_success > 0, returns=returns,
                    steps_to_success=steps_to_success, hand=hand,
                    goal_positions=np.stack(goal_positions), object_starts=object_starts)
