"""The tfmeta demo (`make demo`): MAML learns to fit a new sine wave from 10 points.

Usage:
  python -m tfmeta.cli.demo [--output_dir=demo_output] [--train_steps=N]

Runs the whole workflow on CPU in a few minutes, with the building blocks of
tfmeta-train, tfmeta-evaluate and tfmeta-export:
  1. meta-trains MAML on sinusoid regression tasks (the settings of
     configs/sinusoid_maml.cfg, with a shorter budget);
  2. evaluates the query MSE on new tasks before adaptation (the
     meta-initialisation) and after 1 and 10 SGD steps on 10 support points,
     with 95-percent confidence intervals;
  3. exports a SavedModel that adapts inside the serving graph, reloads it
     with tf.saved_model.load and adapts it to one new sine wave;
  4. plots that wave, its 10 points and the predictions before and after
     adaptation (needs matplotlib).
Everything is written under --output_dir.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import flags

from tfmeta.cli import launcher
from tfmeta.cli.evaluation import EvaluationResult, evaluate, query_predictions
from tfmeta.cli.experiment import Experiment
from tfmeta.cli.training import train

PROGRAM = "tfmeta-demo"
ADAPTATION_STEPS = (0, 1, 10)
PLOT_FILE = "sinusoid_adaptation.png"

# configs/sinusoid_maml.cfg (Finn et al. 2017), with a budget that fits a few CPU minutes.
SINUSOID_MAML = Experiment(
    dataset="sinusoid", learner="maml", backbone="mlp", hidden_units=(40, 40), shots=10,
    queries=10, meta_batch_size=25, inner_steps=1, inner_learning_rate=0.01,
    eval_inner_steps=10, optimizer="adam", learning_rate=1e-3, lr_decay="none",
    train_steps=70000, steps_per_epoch=1000, validation_episodes=0, test_episodes=600,
)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> list[flags.FlagHolder]:
    """Defines the demo's flags on `flag_values` and returns their holders."""
    fv = {"flag_values": flag_values}
    return [
        flags.DEFINE_string("output_dir", "demo_output", "Folder for the run, the SavedModel "
                            "and the plot.", **fv),
        flags.DEFINE_integer("train_steps", 5000, "Meta-training steps (the paper: 70,000).",
                             lower_bound=1, **fv),
        flags.DEFINE_integer("episodes", 600, "Test tasks per evaluation.", lower_bound=1, **fv),
        flags.DEFINE_integer("seed", 0, "Seed of the weights, the tasks and the served sine.",
                             **fv),
    ]


def demo_experiment(train_steps: int, seed: int = 0) -> Experiment:
    """configs/sinusoid_maml.cfg's experiment with `train_steps` steps.

    Example:
    >>> demo_experiment(2000).steps_per_epoch
    1000

    """
    return dataclasses.replace(SINUSOID_MAML, train_steps=train_steps, seed=seed)


def main(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Runs the demo: train, evaluate, export, serve, plot."""
    with launcher.errors_as_one_line(PROGRAM):
        if len(argv) > 1:
            raise ValueError(f"unexpected positional arguments {argv[1:]}; flags start with --")
        run_demo(Path(flag_values.output_dir), flag_values.train_steps, flag_values.episodes,
                 flag_values.seed)


def run_demo(output_dir: Path, train_steps: int, episodes: int = 600, seed: int = 0,
             verbose: int | None = None,
             experiment: Experiment | None = None) -> dict[int, EvaluationResult]:
    """The demo as a function; returns the evaluations by number of adaptation steps.

    Args:
        output_dir: Where the run, the SavedModel and the plot go.
        train_steps: Meta-training steps.
        episodes: Test tasks per evaluation.
        seed: Seed of the weights, the tasks and the served sine.
        verbose: `fit`'s verbosity (default: a progress bar on a terminal, else a line
            per epoch).
        experiment: Replaces `demo_experiment(train_steps, seed)` (tests use a smaller
            meta-batch).

    Returns:
        `{adaptation steps: EvaluationResult}` for 0, 1 and 10 steps.

    """
    start = time.perf_counter()
    experiment = experiment or demo_experiment(train_steps, seed)
    train_steps = experiment.train_steps
    model_dir, export_dir = output_dir / "model", output_dir / "saved_model"
    for folder in (model_dir, export_dir):  # The demo's own folders: start afresh.
        if folder.exists():
            shutil.rmtree(folder)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2

    _section("1. Meta-training MAML on sinusoid tasks",
             f"y = A sin(x - p), A in [0.1, 5], p in [0, pi]; {experiment.meta_batch_size} tasks "
             f"per step, {experiment.shots} support points, {experiment.inner_steps} inner SGD "
             f"step (lr {experiment.inner_learning_rate}), Adam {experiment.learning_rate}, "
             f"{train_steps} steps")
    learner = train(experiment, model_dir, verbose=verbose)
    trained = time.perf_counter()

    _section("2. Query MSE on new tasks",
             f"{episodes} tasks, {experiment.shots} support points each, mean ± 95% CI")
    results = {}
    for steps in ADAPTATION_STEPS:
        results[steps] = evaluate(learner, experiment, episodes=episodes, inner_steps=steps,
                                  seed=seed)
        label = "before adaptation" if steps == 0 else f"after {steps} step{'s' * (steps > 1)}"
        print(f"  {label + ':':20s} {results[steps]}")

    _section("3. Export and serve", "")
    learner.export(export_dir)
    print(f"  SavedModel: {export_dir}")
    serving = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    task = _new_sine(np.random.default_rng(seed + 1), experiment.shots)
    outputs = serving(support_x=tf.constant(task["support_x"]),
                      support_y=tf.constant(task["support_y"]),
                      query_x=tf.constant(task["grid_x"]))
    served = next(iter(outputs.values())).numpy()
    before = learner.model(task["grid_x"], training=False).numpy()
    episode = {"support_x": task["support_x"][None], "support_y": task["support_y"][None],
               "query_x": task["grid_x"][None]}
    in_process = query_predictions(learner, episode).numpy()[0]
    mse_before = float(np.mean((before - task["grid_y"]) ** 2))
    mse_after = float(np.mean((served - task["grid_y"]) ** 2))
    print(f"  tf.saved_model.load -> serving_default(support_x, support_y, query_x): adapted "
          f"to a new sine (A={task['amplitude']:.2f}, p={task['phase']:.2f}) from "
          f"{experiment.shots} points in {experiment.eval_inner_steps} steps")
    print(f"  MSE on 200 points of that sine: {mse_before:.4f} before, {mse_after:.4f} after "
          f"adaptation (served; the in-process learner differs by at most "
          f"{float(np.max(np.abs(in_process - served))):.1e})")

    _section("4. Plot", "")
    plot = _plot(output_dir / PLOT_FILE, task, before, served, experiment.eval_inner_steps)
    print(f"  {plot}" if plot else "  skipped: matplotlib is not installed "
          "(pip install matplotlib)")

    total = time.perf_counter() - start
    print(f"\nDone in {total:.0f} s (meta-training {trained - start:.0f} s). Adaptation "
          f"lowers the query MSE from {results[0].mean:.2f} to "
          f"{results[ADAPTATION_STEPS[-1]].mean:.2f} on new tasks.")
    print(f"Next: tfmeta-train --flagfile=configs/sinusoid_maml.cfg --model_dir=runs/sine "
          f"(the paper's {SINUSOID_MAML.train_steps:,} steps), or "
          f"tfmeta-evaluate --model_dir={model_dir}")
    return results


def _section(title: str, detail: str) -> None:
    print(f"\n== {title} ==", flush=True)
    if detail:
        print(f"  {detail}", flush=True)


def _new_sine(rng: np.random.Generator, shots: int) -> dict:
    """One sinusoid task drawn as in tfmeta.data.sinusoid, with a dense grid of queries."""
    amplitude, phase = rng.uniform(0.1, 5.0), rng.uniform(0.0, math.pi)
    support_x = rng.uniform(-5.0, 5.0, size=(shots, 1)).astype(np.float32)
    grid_x = np.linspace(-5.0, 5.0, 200, dtype=np.float32)[:, None]
    return {
        "amplitude": amplitude,
        "phase": phase,
        "support_x": support_x,
        "support_y": (amplitude * np.sin(support_x - phase)).astype(np.float32),
        "grid_x": grid_x,
        "grid_y": (amplitude * np.sin(grid_x - phase)).astype(np.float32),
    }


def _plot(path: Path, task: dict, before: np.ndarray, after: np.ndarray,
          steps: int) -> Path | None:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(task["grid_x"], task["grid_y"], color="black", label="true sine")
    axes.scatter(task["support_x"], task["support_y"], color="tab:red", zorder=3,
                 label=f"{len(task['support_x'])} support points")
    axes.plot(task["grid_x"], before, "--", color="tab:gray",
              label="before adaptation (meta-initialisation)")
    axes.plot(task["grid_x"], after, color="tab:blue",
              label=f"after {steps} steps (served SavedModel)")
    axes.set(xlabel="x", ylabel="y", title="MAML: adapting to a new sine from 10 points")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path


def run() -> None:
    """`python -m tfmeta.cli.demo` (what `make demo` runs)."""
    launcher.launch(PROGRAM, __doc__, define_flags, main)


if __name__ == "__main__":
    run()
