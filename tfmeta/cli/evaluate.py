"""Evaluates a trained learner on new episodes: tfmeta-evaluate.

Usage:
  tfmeta-evaluate --model_dir=runs/protonet
  tfmeta-evaluate --model_dir=runs/protonet --ways=20 --shots=5 --episodes=1000 --output=r.json
  tfmeta-evaluate --model_dir=runs/tiny_imagenet --dataset=omniglot --variable=ways_and_shots
  tfmeta-evaluate --model_dir=runs/protonet --dataset=omniglot --test_time_adaptation=tsa \
      --adaptation_steps=40 --adaptation_learning_rate=0.0005

--test_time_adaptation=finetune|tsa (ProtoNet) adapts to each support set at test time by
the prototype loss (tfmeta.TestTimeAdaptation): the whole encoder (finetune), or 1x1
adapters beside its frozen convolutions and a feature alignment (tsa); the JSON then
also holds "test_time_adaptation" (its config).

Loads <model_dir>/learner.keras and experiment.json (written by tfmeta-train),
samples --episodes episodes of --split (the same episodes for the same --seed),
and prints the mean per-episode query accuracy (MSE for regression) with its
95-percent confidence interval, 1.96 * std / sqrt(episodes), e.g.

  accuracy: 0.9871 ± 0.0021 (95% CI, 1000 episodes, 5-way 1-shot)

A Meta-World run (--dataset=metaworld) is also evaluated in the simulator with
--rollouts=N: for each of N held-out goals, the learner adapts once to --shots
demonstrations of the goal (--starts=other_tasks: one demonstration of each of
--shots other tasks of the goal's type, ML10's new starts) and acts closed loop
for the run's horizon; it prints the success rate with its 95% Wilson interval, e.g.

  tfmeta-evaluate --model_dir=runs/push --rollouts=50 --shots=1 --starts=moved --output=r.json
  success: 0.9400 [0.8378, 0.9794] (95% Wilson, 50 rollouts, 1-shot, push-v3 ML1, moved starts)

and --output writes {"metric": "success", "mean", "interval": [lo, hi], "episodes",
"shots", "starts", "mean_return", "mean_steps_to_success", "per_task", ...}.

Unset flags take the experiment's test settings (its test_ways, test_shots,
test_queries, test_episodes) and the data root it was trained on (its
--data_dir). --output also writes the result as JSON: {"metric", "mean",
"ci95", "episodes", "ways", "shots"}.

A text model is evaluated on another intent dataset the same way:

  tfmeta-evaluate --model_dir=runs/banking77 --intent_dataset=clinc150 --shots=1

A class split derived from the data (--dataset=image_folder's seeded split) is
recorded in experiment.json at training; evaluation refuses, naming the classes
added or removed, when the folder no longer gives the same split.

A run folder is code-equivalent input, like a .keras file: its
experiment.json decides which folders are read. Evaluate only runs you trust.
"""

from __future__ import annotations

from absl import flags

from tfmeta.cli import builders, launcher, paths
from tfmeta.cli.evaluation import evaluate, load_trained, trained_experiment
from tfmeta.cli.experiment import VARIABLE_EPISODES, check_class_splits
from tfmeta.cli.rollout_evaluation import evaluate_in_simulator
from tfmeta.data.control.evaluation import STARTS
from tfmeta.distribute.cpu_threads import cpu_threads_for
from tfmeta.learners.support_augmentation import AUGMENTATIONS
from tfmeta.learners.test_time_adaptation import METHODS, OPTIMIZER_NAMES, TestTimeAdaptation

PROGRAM = "tfmeta-evaluate"
SPLITS = ("train", "validation", "test")


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> list[flags.FlagHolder]:
    """Defines tfmeta-evaluate's flags on `flag_values` and returns their holders."""
    fv = {"flag_values": flag_values}
    holders = [
        flags.DEFINE_string("model_dir", None, "Folder of a run of tfmeta-train.", **fv),
        flags.DEFINE_string("data_dir", None, "Data root holding omniglot/, intent/, ... "
                            "(default: the run's own --data_dir, else $TFMETA_DATA_DIR).",
                            **fv),
        flags.DEFINE_enum("split", "test", SPLITS, "Which classes (tasks) to sample "
                          "episodes from.", **fv),
        flags.DEFINE_integer("ways", None, "Classes per episode (default: the experiment's "
                             "test_ways).", **fv),
        flags.DEFINE_integer("shots", None, "Support examples per class (default: the "
                             "experiment's test_shots).", **fv),
        flags.DEFINE_integer("queries", None, "Query examples per class (default: the "
                             "experiment's test_queries).", **fv),
        flags.DEFINE_integer("episodes", None, "Episodes to evaluate (default: the "
                             "experiment's test_episodes).", **fv),
        flags.DEFINE_integer("inner_steps", None, "MAML/Reptile: adaptation steps, 0 for the "
                             "meta-initialisation itself (default: the experiment's "
                             "eval_inner_steps).", **fv),
        flags.DEFINE_integer("batch_size", None, "Episodes per evaluation batch (default: "
                             "about as many examples as a training step).", **fv),
        flags.DEFINE_integer("seed", 0, "Seed of the evaluation episodes.", **fv),
        flags.DEFINE_integer("rollouts", None, "Meta-World runs: evaluate in the simulator "
                             "on this many held-out goals (one closed-loop rollout each) "
                             "instead of the query MSE.", lower_bound=1, **fv),
        flags.DEFINE_enum("starts", "own", STARTS, "--rollouts: own (demonstrations of the "
                          "goal from its own start, where the rollout starts), moved (the "
                          "rollout's object starts where another test goal's task starts it) "
                          "or other_tasks (one demonstration of each of --shots other tasks "
                          "of the goal's type; the rollout starts at the goal's own start).",
                          **fv),
        flags.DEFINE_string("dataset", None, "Cross-domain evaluation: another dataset "
                            "(e.g. omniglot for a model trained on tiny_imagenet), its images "
                            "converted to the model's size and channels (default: the run's "
                            "dataset).", **fv),
        flags.DEFINE_integer("image_size", None, "Side at which --dataset's images are read "
                             "before conversion (default: the run's --image_size).", **fv),
        flags.DEFINE_string("intent_dataset", None, "Cross-domain evaluation of a text model: "
                            "another folder under <root>/intent/ (e.g. clinc150 for a model "
                            "trained on banking77; default: the run's).", **fv),
        flags.DEFINE_integer("class_split", None, "The class split of the intent dataset "
                             "evaluated (default: the run's).", **fv),
        flags.DEFINE_enum("variable", None, VARIABLE_EPISODES, "Meta-Dataset's variable "
                          "episodes instead of the run's kind: none; shots (--ways fixed); "
                          "ways_and_shots (ways uniform in [5, --ways], --ways default 50) "
                          "(default: the run's --variable).", **fv),
        flags.DEFINE_integer("max_support", None, "Variable episodes: the most support "
                             "examples of an episode (default: the run's).", **fv),
        flags.DEFINE_integer("max_queries", None, "Variable episodes: the most query examples "
                             "per class (default: the run's).", **fv),
        flags.DEFINE_enum("test_time_adaptation", None, METHODS, "ProtoNet: adapt to each "
                          "support set at test time by the prototype loss: finetune the whole "
                          "encoder, or fit task-specific adapters beside its frozen "
                          "convolutions (tsa, Li et al. 2022).", **fv),
        flags.DEFINE_integer("adaptation_steps", None, "--test_time_adaptation: optimizer "
                             "steps per support set (default: 50 finetune, 40 tsa).",
                             lower_bound=0, **fv),
        flags.DEFINE_float("adaptation_learning_rate", None, "--test_time_adaptation: the "
                           "step size (default: 0.001 finetune, 0.0005 tsa).", **fv),
        flags.DEFINE_enum("adaptation_optimizer", None, OPTIMIZER_NAMES,
                          "--test_time_adaptation: the optimizer (default: adam).", **fv),
        flags.DEFINE_enum("adaptation_augmentation", None, AUGMENTATIONS,
                          "--test_time_adaptation: augment the support images at every step "
                          "(seeded by --seed).", **fv),
        flags.DEFINE_string("output", None, "Also write the result as JSON to this file.",
                            **fv),
        launcher.define_cpu_threads_flag(flag_values),
    ]
    flags.mark_flag_as_required("model_dir", flag_values=flag_values)
    return holders


def main(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Evaluates the run in `--model_dir` and prints (and optionally writes) the result."""
    with launcher.errors_as_one_line(PROGRAM):
        if len(argv) > 1:
            raise ValueError(f"unexpected positional arguments {argv[1:]}; flags start with --")
        if flag_values.output is not None:
            # Checked first: an unwritable --output must not cost a whole evaluation.
            paths.writable_file(flag_values.output, "output")
        adaptation = adaptation_from_flags(flag_values)
        # Before TensorFlow runs an operation (loading the learner does).
        trained = trained_experiment(flag_values.model_dir)
        if trained is not None:
            cpu_threads_for(flag_values.cpu_threads, trained.learner, trained.meta_batch_size)
        learner, experiment = load_trained(flag_values.model_dir)
        if flag_values.rollouts is not None:
            result = evaluate_in_simulator(
                learner, experiment, rollouts=flag_values.rollouts, shots=flag_values.shots,
                starts=flag_values.starts, seed=flag_values.seed)
            print(result)
            if flag_values.output is not None:
                result.write_json(flag_values.output)
            return
        data_dir = flag_values.data_dir
        # A split derived from the data (an image folder's) must be the one trained on.
        check_class_splits(
            flag_values.model_dir,
            builders.class_splits(experiment, data_dir or experiment.data_dir), "evaluated",
        )
        result = evaluate(
            learner, experiment, split=flag_values.split, ways=flag_values.ways,
            shots=flag_values.shots, queries=flag_values.queries,
            episodes=flag_values.episodes, inner_steps=flag_values.inner_steps,
            batch_size=flag_values.batch_size, seed=flag_values.seed, data_dir=data_dir,
            dataset=flag_values.dataset, image_size=flag_values.image_size,
            intent_dataset=flag_values.intent_dataset, class_split=flag_values.class_split,
            variable=flag_values.variable, max_support=flag_values.max_support,
            max_queries=flag_values.max_queries,
            test_time_adaptation=adaptation,
        )
        print(result)
        if flag_values.output is not None:
            result.write_json(flag_values.output)


ADAPTATION_FLAGS = {"adaptation_steps": "steps", "adaptation_learning_rate": "learning_rate",
                    "adaptation_optimizer": "optimizer", "adaptation_augmentation": "augmentation"}


def adaptation_from_flags(flag_values: flags.FlagValues) -> TestTimeAdaptation | None:
    """The `TestTimeAdaptation` the flags ask for, or None; checked before any work."""
    given = {flag: getattr(flag_values, flag) for flag in ADAPTATION_FLAGS
             if getattr(flag_values, flag) is not None}
    if flag_values.test_time_adaptation is None:
        if given:
            flag = next(iter(given))
            raise ValueError(f"Invalid value for flag `--{flag}`: it sets the test-time "
                             "adaptation, so it needs --test_time_adaptation=finetune|tsa. "
                             f"Received: --{flag}={given[flag]}")
        return None
    try:
        return TestTimeAdaptation(flag_values.test_time_adaptation, seed=flag_values.seed,
                                  **{ADAPTATION_FLAGS[flag]: value
                                     for flag, value in given.items()})
    except ValueError as error:
        message = str(error)
        for flag, argument in ADAPTATION_FLAGS.items():
            message = message.replace(f"argument `{argument}`", f"flag `--{flag}`").replace(
                f"Received: {argument}=", f"Received: --{flag}=")
        raise ValueError(message) from None


def run() -> None:
    """The `tfmeta-evaluate` console script."""
    launcher.launch(PROGRAM, __doc__, define_flags, main)


if __name__ == "__main__":
    run()
