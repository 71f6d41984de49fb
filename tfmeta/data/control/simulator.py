"""Meta-World goals and environments: the pinned simulator, its benchmarks and hidden goals.

Meta-World (`metaworld==3.1.1` on MuJoCo `mujoco==3.3.0`; newer MuJoCo releases break its
scripted experts) gives 39-number observations whose last three (`obs[36:39]`, the goal)
are zero in the meta-learning benchmarks. The scripted experts read the goal, so the
expert acts on the goal-visible observation and the learner sees the same observation with
the goal slots zeroed, which is bit-identical to the benchmark's own hidden-goal one.

`set_task` takes the observability flag from the task's pickled data, so the goal is made
visible by rebuilding the task with `partially_observable=False` in its data.
ML1 is built directly (`metaworld.ML1(task, seed)`), never through Meta-World's gym
registry, whose `Meta-World/ML1-train` entry builds the test goals.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata
import pickle
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from tfmeta.data.arguments import invalid_value

REQUIRED_VERSIONS = {"metaworld": "3.1.1", "mujoco": "3.3.0"}
PIP_COMMAND = "pip install metaworld==3.1.1 mujoco==3.3.0  (or: pip install tfmeta[control])"
BENCHMARKS = ("ML1", "ML10", "ML45")
SPLITS = ("train", "test")
OBSERVATION_DIM = 39
ACTION_DIM = 4
GOAL_SLOTS = slice(36, 39)
# Meta-World truncates an episode after this many steps.
MAX_HORIZON = 500
# Every Meta-World benchmark split has this many goals of each task type.
GOALS_PER_TYPE = 50
ALL_TASKS = "all"
# Meta-World keeps an object start at least this far (x, y) from the goal.
MIN_START_DISTANCE = 0.15


def simulator_versions() -> dict[str, str]:
    """The installed versions of metaworld and mujoco, checked against the pins.

    Raises:
        ImportError: In one line naming the pip command, if either is missing or at
            another version.

    Example:
    >>> simulator_versions()["mujoco"]
    '3.3.0'
    """
    found = {}
    for package, wanted in REQUIRED_VERSIONS.items():
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            raise ImportError(
                f"Meta-World demonstrations need {package}=={wanted}, which is not installed: "
                f"{PIP_COMMAND}"
            ) from None
        if found[package] != wanted:
            raise ImportError(
                f"Meta-World demonstrations need {package}=={wanted}, found {package}=="
                f"{found[package]} (other versions break the scripted experts): {PIP_COMMAND}"
            )
    return found


def _metaworld() -> Any:
    simulator_versions()
    return importlib.import_module("metaworld")


def task_types(benchmark: str, split: str) -> tuple[str, ...]:
    """The task types (environment names) of `benchmark`'s `split`, without simulation.

    ML1 has every type in both splits (train and test goals of one type); ML10 and ML45
    hold different types out for `test`.

    Example:
    >>> task_types("ML10", "test")[:2]
    ('drawer-open-v3', 'door-close-v3')
    """
    metaworld = _metaworld()
    env_dict = importlib.import_module("metaworld.env_dict")
    if benchmark == "ML1":
        return tuple(sorted(metaworld.ALL_V3_ENVIRONMENTS))
    table = {"ML10": env_dict.ML10_V3, "ML45": env_dict.ML45_V3}[benchmark]
    return tuple(table[split])


def check_task(task: str | None, benchmark: str, split: str) -> tuple[str, ...]:
    """Checks `task` against `benchmark` and `split` and returns the task types it means.

    Args:
        task: An environment name such as "push-v3", or None / "all" for every type of
            the split (ML10 and ML45 only).
        benchmark: "ML1", "ML10" or "ML45".
        split: "train" or "test".

    Raises:
        ValueError: In one line, for an unknown benchmark, split or task (listing the
            valid ones) or a task type that is not in the benchmark's split.

    Example:
    >>> check_task("push-v3", "ML1", "test")
    ('push-v3',)
    """
    if benchmark not in BENCHMARKS:
        raise invalid_value("benchmark", "one of " + ", ".join(BENCHMARKS), benchmark)
    if split not in SPLITS:
        raise invalid_value("split", "one of " + ", ".join(SPLITS), split)
    everything = task_types("ML1", split)
    if task is None or task == ALL_TASKS:
        if benchmark == "ML1":
            raise invalid_value("task", "one Meta-World task for benchmark 'ML1' (e.g. "
                                "'push-v3'; 'all' needs ML10 or ML45)", task)
        return task_types(benchmark, split)
    if task not in everything:
        raise invalid_value("task", "a Meta-World task, one of " + ", ".join(everything), task)
    if benchmark != "ML1":
        types = task_types(benchmark, split)
        if task not in types:
            other = "test" if split == "train" else "train"
            where = (f"a {other} task type of {benchmark}" if task in task_types(benchmark, other)
                     else f"not in {benchmark}")
            raise ValueError(
                f"Invalid value for argument `task`: expected one of the {split} task types "
                f"of {benchmark} ({', '.join(types)}) or 'all'. Received: task={task!r}, "
                f"which is {where}"
            )
    return (task,)


@dataclasses.dataclass(frozen=True)
class Goal:
    """One Meta-World task (a goal and an object start of one task type).

    Attributes:
        env_name: The task type, e.g. "push-v3".
        index: Its position among the type's goals of the split.
        task: Meta-World's `Task` (goal hidden, as the benchmark gives it).
    """

    env_name: str
    index: int
    task: Any

    @property
    def rand_vec(self) -> np.ndarray:
        """The task's random vector: the object's start, then the goal (push, pick-place)."""
        return np.asarray(pickle.loads(self.task.data)["rand_vec"])

    def visible(self, rand_vec: Sequence[float] | None = None) -> Any:
        """The task rebuilt with the goal visible (and optionally another random vector)."""
        metaworld_types = importlib.import_module("metaworld.types")
        data = pickle.loads(self.task.data)
        data["partially_observable"] = False
        if rand_vec is not None:
            data["rand_vec"] = np.asarray(rand_vec, dtype=data["rand_vec"].dtype)
        return metaworld_types.Task(env_name=self.task.env_name, data=pickle.dumps(data))


@functools.lru_cache(maxsize=8)
def _benchmark(benchmark: str, task: str | None, seed: int) -> Any:
    metaworld = _metaworld()
    if benchmark == "ML1":
        return metaworld.ML1(task, seed=seed)
    return getattr(metaworld, benchmark)(seed=seed)


def goals(benchmark: str, types: Sequence[str], split: str, goal_seed: int = 0,
          goals_per_type: int | None = None) -> list[Goal]:
    """The goals of `types` in `benchmark`'s `split`, type by type, in Meta-World's order.

    Args:
        benchmark: "ML1", "ML10" or "ML45" (checked by `check_task`).
        types: Task types of the split.
        split: "train" or "test".
        goal_seed: The benchmark's seed (which goals it draws).
        goals_per_type: Keep the first this many goals of each type (default: all).
    """
    built = _benchmark(benchmark, types[0] if benchmark == "ML1" else None, int(goal_seed))
    tasks = built.train_tasks if split == "train" else built.test_tasks
    chosen = []
    for env_name in types:
        of_type = [task for task in tasks if task.env_name == env_name]
        chosen += [Goal(env_name, index, task)
                   for index, task in enumerate(of_type[:goals_per_type])]
    return chosen


def moved_starts(goals: Sequence[Goal], count: int = 1) -> list[list[np.ndarray]]:
    """For each goal, `count` random vectors with the object moved to other goals' starts.

    Each keeps the goal's own goal and takes the object start (the first three numbers of
    the random vector, as in push and pick-place) from the next goals of the same type,
    cyclically, skipping a goal whose object start lies within 0.15 of this goal (which
    Meta-World would resample forever, the random vector being frozen). With fewer such
    donors than `count`, the donors repeat in the same order.

    Raises:
        ValueError: If a goal has no donor at all.

    Example:
    >>> chosen = goals("ML1", ("push-v3",), "test", goals_per_type=3)
    >>> moved = moved_starts(chosen, 2)
    >>> bool((moved[0][0][:3] == chosen[1].rand_vec[:3]).all()), len(moved[0])
    (True, 2)
    """
    vectors = [goal.rand_vec for goal in goals]
    moved = []
    for number, goal in enumerate(goals):
        same = [other for other in range(len(goals)) if goals[other].env_name == goal.env_name]
        position = same.index(number)
        donors = [same[(position + shift) % len(same)] for shift in range(1, len(same))]
        donors = [other for other in donors if np.linalg.norm(
            vectors[other][:2] - vectors[number][3:5]) >= MIN_START_DISTANCE]
        if not donors:
            raise invalid_value("starts", "'own' here: no other goal of the task type starts "
                                f"its object at least {MIN_START_DISTANCE} from goal "
                                f"{goal.env_name}/{goal.index} (a moved start needs one)",
                                "moved")
        of_goal = []
        for shift in range(count):
            vector = vectors[number].copy()
            vector[:3] = vectors[donors[shift % len(donors)]][:3]
            of_goal.append(vector)
        moved.append(of_goal)
    return moved


def make_env(env_name: str, benchmark: str, goal_seed: int = 0) -> Any:
    """A new environment of the task type `env_name` (set a task before resetting it)."""
    built = _benchmark(benchmark, env_name if benchmark == "ML1" else None, int(goal_seed))
    classes = {**built.train_classes, **built.test_classes}
    return classes[env_name]()


def expert(env_name: str) -> Any:
    """The scripted expert of `env_name` (`metaworld.policies`); it reads the goal."""
    policies = importlib.import_module("metaworld.policies")
    return policies.ENV_POLICY_MAP[env_name]()


def expert_action(policy: Any, observation: np.ndarray) -> np.ndarray:
    """The expert's action at a goal-visible observation, clipped to the action box."""
    with warnings.catch_warnings():
        # The experts' gains exceed the box on purpose; the environment clips too.
        warnings.filterwarnings("ignore", message="Constant", category=UserWarning)
        action = policy.get_action(observation)
    return np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)


def hide_goal(observations: np.ndarray) -> np.ndarray:
    """A copy of `[..., 39]` observations with the goal slots `[36:39]` zeroed, float32.

    Example:
    >>> hide_goal(np.ones(39))[35:].tolist()
    [1.0, 0.0, 0.0, 0.0]
    """
    hidden = np.array(observations, dtype=np.float32)
    hidden[..., GOAL_SLOTS] = 0.0
    return hidden
