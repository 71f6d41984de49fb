"""tfmeta-evaluate --rollouts: a trained imitation learner acting in the Meta-World simulator."""

from __future__ import annotations

from tfmeta.cli.experiment import Experiment
from tfmeta.data.control import simulator
from tfmeta.data.control.evaluation import RolloutResult, evaluate_rollouts, learner_policy

ROLLOUT_DATASETS = ("metaworld",)


def check_rollout_experiment(learner, experiment: Experiment) -> None:
    """Refuses, in one line, a run that cannot act in Meta-World (before any simulation)."""
    if experiment.dataset not in ROLLOUT_DATASETS:
        raise ValueError(
            "Invalid value for flag `--rollouts`: rollouts run in the Meta-World simulator, so "
            f"they need a run trained with --dataset=metaworld. Received: --rollouts with a "
            f"--dataset={experiment.dataset} run")
    model = getattr(learner, "model", None)
    shape = tuple(getattr(model, "input_shape", (None, simulator.OBSERVATION_DIM))[1:])
    if shape != (simulator.OBSERVATION_DIM,):
        raise ValueError(
            f"Invalid `--model_dir`: its policy takes observations of shape {list(shape)}, "
            f"expected [{simulator.OBSERVATION_DIM}] (Meta-World's observation). A model "
            "trained on other observations cannot act here.")


def evaluate_in_simulator(learner, experiment: Experiment, *, rollouts: int,
                          shots: int | None = None, starts: str = "own", seed: int = 0,
                          verbose: bool = True) -> RolloutResult:
    """Adapts `learner` once to K demonstrations of each test goal and rolls it out.

    The task, benchmark, horizon, noise and number of recorded demonstrations are the
    run's (`experiment.metaworld_*`); `shots` defaults to the run's test shots.
    """
    check_rollout_experiment(learner, experiment)
    result, _ = evaluate_rollouts(
        lambda support_x, support_y: learner_policy(learner, support_x, support_y),
        task=experiment.metaworld_task, benchmark=experiment.metaworld_benchmark,
        shots=experiment.eval_shots if shots is None else shots, rollouts=rollouts,
        horizon=experiment.metaworld_horizon, starts=starts,
        action_noise=experiment.metaworld_action_noise,
        demonstrations=experiment.metaworld_demonstrations, seed=seed, verbose=verbose)
    return result
