"""Few-shot imitation episodes from Meta-World demonstrations: `tfmeta.data.metaworld`."""

from __future__ import annotations

import os
import warnings

import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import (
    check_choice,
    check_int_in_range,
    check_seed,
    check_shots_and_queries,
)
from tfmeta.data.control import simulator
from tfmeta.data.control.demonstrations import (
    Demonstrations,
    check_recording,
    load_demonstrations,
)
from tfmeta.data.episodes import episode_dataset
from tfmeta.data.registry import DatasetSpec, register
from tfmeta.data.sampling import EpisodeSampler

# What an episode's demonstrations share: "own", one goal (support and query demonstrations
# of it, from its own start); "other_tasks", one task type (its demonstrations drawn at
# random across its goals, so support and query mostly come from different object starts
# and goals), as the "other_tasks" rollouts adapt (`tfmeta.data.control.evaluation`).
STARTS = ("own", "other_tasks")


def metaworld(
    task: str | None = "push-v3",
    split: str = "train",
    shots: int = 1,
    queries: int = 1,
    meta_batch_size: int = 10,
    benchmark: str = "ML1",
    horizon: int = 200,
    action_noise: float = 0.1,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    demonstrations: int = 10,
    goals_per_type: int | None = None,
    goal_seed: int = 0,
    starts: str = "own",
    cache_dir: str | os.PathLike[str] | None = None,
    verbose: bool = True,
    query_starts: str = "own",
    moved_demonstrations: int = 4,
) -> tf.data.Dataset:
    """Endless meta-batches of one-goal imitation episodes recorded in Meta-World.

    Each episode is one goal (ML1: a goal of `task`; ML10/ML45: a goal of one task type,
    the training types in "train" and the held-out types in "test"). `shots`
    demonstrations of the goal form the support set and `queries` other demonstrations of
    the same goal the query set. With `starts="other_tasks"` an episode is one task type
    instead: `shots + queries` distinct demonstrations drawn at random among all of the
    type's goals (mostly of different goals and object starts), the meta-training that
    matches the "other_tasks" rollouts (ML10's new starts). A demonstration is `horizon`
    consecutive states with the goal slots `obs[36:39]` zero, each labelled with the
    scripted expert's noise-free action there (in [-1, 1]); Gaussian action noise when
    recording makes them differ.

    With `query_starts="moved"` the meta-objective is the moved-start protocol's, "adapt on
    demonstrations from the goal's start, act from another": the support demonstrations
    still come from the goal's own start, and the query demonstrations from
    `moved_demonstrations` more per goal, each recorded with the object where another goal
    of the split starts it (`load_demonstrations(..., starts="moved")`), so an episode's
    support and query starts always differ.

    S is static: every demonstration has exactly `horizon` real state-action pairs (the
    recording runs past the first success, as a rollout does), and the support set is the
    `shots` demonstrations concatenated, `S = shots * horizon` (`Q = queries * horizon`).
    Nothing is padded or subsampled, so the support loss is exactly the behaviour-cloning
    loss of the demonstrations.

    Elements: `support_x [B, S, 39]`, `support_y [B, S, 4]`, `query_x [B, Q, 39]`,
    `query_y [B, Q, 4]`, float32. The demonstrations are recorded once and cached (see
    `tfmeta.data.control.demonstrations.load_demonstrations`); failed demonstrations are
    dropped, and a goal left with fewer than `shots + queries` is left out with a warning.

    Args:
        task: A Meta-World task type, e.g. "push-v3", "pick-place-v3", "reach-v3"; None or
            "all" for every type of the split (ML10, ML45).
        split: "train" or "test".
        shots: Support demonstrations per episode.
        queries: Query demonstrations per episode.
        meta_batch_size: Episodes per element, B.
        benchmark: "ML1", "ML10" or "ML45".
        horizon: Steps per demonstration (1..500).
        action_noise: Standard deviation of the recording's Gaussian action noise.
        seed: Seed of the action noise and of the episode stream.
        data_dir: Unused (demonstrations are recorded, not read); accepted for the
            registry's common signature.
        demonstrations: Demonstrations recorded per goal (at least `shots + queries`).
        goals_per_type: Use only the first this many goals of each type (default: all).
        goal_seed: The benchmark's seed (which goals it draws).
        starts: "own" (an episode is one goal) or "other_tasks" (one task type).
        cache_dir: Cache folder (default: `tfmeta.data.resolve_cache_dir()`).
        verbose: Progress bar while recording.
        query_starts: "own" (queries from the support's start) or "moved" (queries from
            other goals' object starts, see above).
        moved_demonstrations: With `query_starts="moved"`, demonstrations recorded per
            goal from moved starts, one start each (at least `queries`).

    Returns:
        An endless `tf.data.Dataset` of meta-batches.

    Raises:
        ValueError: Before any simulation, for an unknown task (the message lists them),
            a task type not in the benchmark's split, a bad horizon or noise, or more
            demonstrations per episode than are recorded.
        ImportError: If metaworld or mujoco is missing or at another version.

    Example:
    >>> dataset = metaworld("reach-v3", "test", shots=1, queries=1, meta_batch_size=2,
    ...                     horizon=20, demonstrations=2, goals_per_type=2, verbose=False)
    >>> inputs, query_y = next(iter(dataset))
    >>> inputs["support_x"].shape, inputs["support_y"].shape, query_y.shape
    (TensorShape([2, 20, 39]), TensorShape([2, 20, 4]), TensorShape([2, 20, 4]))
    """
    simulator.check_task(task, benchmark, split)
    check_recording(horizon, action_noise, demonstrations)
    shots = check_int_in_range("shots", shots)
    queries = check_int_in_range("queries", queries)
    meta_batch_size = check_int_in_range("meta_batch_size", meta_batch_size)
    seed = check_seed(seed)
    check_choice("starts", starts, STARTS)
    check_choice("query_starts", query_starts, QUERY_STARTS)
    if query_starts == "moved" and starts != "own":
        raise ValueError("Invalid value for argument `query_starts`: expected 'own' with "
                         f"starts={starts!r} (moved queries are of one goal's episodes). "
                         f"Received: query_starts={query_starts!r}")
    if starts == "own" and query_starts == "own":
        check_shots_and_queries(shots, queries, demonstrations,
                                f"demonstrations={demonstrations} recorded per goal")
    elif starts == "own":
        check_int_in_range("shots", shots, 1, demonstrations,
                           f"demonstrations={demonstrations} recorded per goal")
        check_int_in_range("moved_demonstrations", moved_demonstrations)
        check_int_in_range("queries", queries, 1, moved_demonstrations,
                           f"moved_demonstrations={moved_demonstrations} recorded per goal")
    else:
        goals = min(goals_per_type or simulator.GOALS_PER_TYPE, simulator.GOALS_PER_TYPE)
        check_shots_and_queries(shots, queries, demonstrations * goals,
                                f"{demonstrations} demonstrations x {goals} goals of a type")
    del data_dir
    recording = {"benchmark": benchmark, "horizon": horizon, "action_noise": action_noise,
                 "seed": seed, "goal_seed": goal_seed, "goals_per_type": goals_per_type,
                 "cache_dir": cache_dir, "verbose": verbose}
    demos = load_demonstrations(task, split, demonstrations=demonstrations, **recording)
    moved = None
    if query_starts == "moved":
        moved = load_demonstrations(task, split, demonstrations=moved_demonstrations,
                                    starts="moved", **recording)
    sampler = demonstration_sampler(demos, shots, queries, meta_batch_size, seed, starts,
                                    query_demos=moved)

    def to_pairs(inputs, query_y):
        del query_y  # The goal labels of a one-goal episode (all 0).

        def pairs(x):  # [B, demonstrations, H, 39 + 4] -> [B, demonstrations * H, 39], [.., 4]
            x = tf.reshape(x, [meta_batch_size, x.shape[1] * horizon, x.shape[-1]])
            return x[..., :simulator.OBSERVATION_DIM], x[..., simulator.OBSERVATION_DIM:]

        support_x, support_y = pairs(inputs["support_x"])
        query_x, query_y = pairs(inputs["query_x"])
        return {"support_x": support_x, "support_y": support_y, "query_x": query_x}, query_y

    return episode_dataset(sampler).map(to_pairs, num_parallel_calls=tf.data.AUTOTUNE)


def demonstration_sampler(demos: Demonstrations, shots: int, queries: int,
                          meta_batch_size: int, seed: int, starts: str = "own",
                          query_demos: Demonstrations | None = None) -> EpisodeSampler:
    """The one episode sampler over goals (or task types) and their demonstrations.

    A class is a goal ("own") or a task type ("other_tasks": the demonstrations of its
    goals, which are stored type by type); an example is one demonstration, its states and
    actions side by side `[H, 39 + 4]`. Classes with fewer than `shots + queries`
    demonstrations are left out with a warning. With `query_demos` (the same goals'
    demonstrations from other starts; goals only), the support set comes from `demos` and
    the query set from `query_demos` (the sampler's separate query pool); a goal needs
    `shots` of the one and `queries` of the other.
    """
    names = [str(name) for name in demos.goal_names]
    if starts == "other_tasks":
        types = list(dict.fromkeys(name.split("/")[0] for name in names))
        type_of_goal = np.asarray([types.index(name.split("/")[0]) for name in names],
                                  np.int64)
        group, names = type_of_goal[demos.goal], types
    else:
        group = demos.goal
    unit = "goal" if starts == "own" else "task type"
    sizes = np.bincount(group, minlength=len(names))
    usable = sizes >= shots + queries
    if query_demos is not None:
        query_sizes = np.bincount(query_demos.goal, minlength=len(demos.goal_names))
        usable = (sizes >= shots) & (query_sizes >= queries)
    if not usable.any():
        raise ValueError(
            "Invalid values for arguments `shots` and `queries`: expected shots + queries to "
            f"be at most {int(sizes.max())} (the successful demonstrations of the best "
            f"{unit}). Received: shots={shots}, queries={queries}"
        )
    if not usable.all():
        left_out = [name for name, kept in zip(names, usable) if not kept]
        warnings.warn(f"Leaving out {len(left_out)} {unit}s with fewer than {shots + queries} "
                      f"successful demonstrations: {', '.join(left_out)}", stacklevel=3)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    examples = np.concatenate([demos.observations, demos.actions], axis=-1)
    pool = {}
    if query_demos is not None:
        pool = {"query_offsets": len(examples) + np.concatenate(
                    [[0], np.cumsum(query_sizes)[:-1]])[usable],
                "query_sizes": query_sizes[usable]}
        examples = np.concatenate([examples, np.concatenate(
            [query_demos.observations, query_demos.actions], axis=-1)])
    return EpisodeSampler(examples, offsets=offsets[usable], sizes=sizes[usable], ways=1,
                          shots=shots, queries=queries, meta_batch_size=meta_batch_size,
                          seed=seed, **pool)


OPTIONS = {
    "metaworld_task": "task",
    "metaworld_benchmark": "benchmark",
    "metaworld_horizon": "horizon",
    "metaworld_action_noise": "action_noise",
    "metaworld_demonstrations": "demonstrations",
    "metaworld_goals": "goals_per_type",
    "metaworld_starts": "starts",
    "metaworld_query_starts": "query_starts",
    "metaworld_moved_demonstrations": "moved_demonstrations",
}
QUERY_STARTS = ("own", "moved")


def _build_split(split, ways, shots, queries, meta_batch_size, seed, data_dir, **options):
    """The registry's entry: `options` are the `metaworld_*` flags; `ways` is unused."""
    del ways  # One goal per episode.
    arguments = {OPTIONS[name]: value for name, value in options.items()}
    return metaworld(split=split, shots=shots, queries=queries,
                     meta_batch_size=meta_batch_size, seed=seed, data_dir=data_dir,
                     **arguments)


SPEC = register(
    DatasetSpec(
        name="metaworld",
        build=_build_split,
        task="regression",
        example="vector",
        example_shape=lambda options: (simulator.OBSERVATION_DIM,),
        target_shape=lambda options: (simulator.ACTION_DIM,),
        options=tuple(OPTIONS),
        splits=simulator.SPLITS,
        description="Few-shot imitation on Meta-World (MuJoCo): expert demonstrations of a "
                    "goal the observation hides.",
    )
)
