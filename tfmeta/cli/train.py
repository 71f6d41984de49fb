"""Meta-trains a few-shot learner on episodes: tfmeta-train.

Usage:
  tfmeta-train --flagfile=configs/omniglot_protonet_5w1s.cfg --model_dir=runs/protonet
  tfmeta-train --flagfile=configs/sinusoid_maml.cfg --model_dir=runs/sine --train_steps=2000

A config (an absl flagfile in configs/) sets the experiment; flags after
--flagfile override it. Training shows a Keras progress bar and writes to
--model_dir: experiment.json, TensorBoard logs (logs/), history.csv, the
training state after every epoch (backup/) and the trained learner
(learner.keras). Run the same command again after an interruption and it
resumes from the last finished epoch; tfmeta-evaluate and tfmeta-export then
need only --model_dir.
"""

from __future__ import annotations

import dataclasses

from absl import flags

from tfmeta import data
from tfmeta.backbones.initialization import KERNEL_INITIALIZERS
from tfmeta.cli import launcher
from tfmeta.cli.experiment import (
    BACKBONES,
    DISTANCES,
    HEAD_INITS,
    INNER_OPTIMIZERS,
    LEARNED_RATES,
    LEARNERS,
    LR_DECAYS,
    METAWORLD_BENCHMARKS,
    METAWORLD_QUERY_STARTS,
    METAWORLD_STARTS,
    OPTIMIZERS,
    OUTPUT_ACTIVATIONS,
    SCHEMES,
    VARIABLE_EPISODES,
    Experiment,
)
from tfmeta.cli.training import restored_epoch, train
from tfmeta.distribute import STRATEGY_NAMES, strategy_from_name
from tfmeta.distribute.cpu_threads import cpu_threads_for

PROGRAM = "tfmeta-train"
_DEFAULTS = Experiment()


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> list[flags.FlagHolder]:
    """Defines tfmeta-train's flags on `flag_values` and returns their holders."""
    d = _DEFAULTS
    fv = {"flag_values": flag_values}
    holders = [
        # === Run ===
        flags.DEFINE_string("model_dir", None, "Folder of the run: logs, checkpoints, the "
                            "trained learner; rerun to resume.", **fv),
        flags.DEFINE_string("data_dir", None, "Data root holding omniglot/, intent/, ... (default: "
                            "$TFMETA_DATA_DIR).", **fv),
        flags.DEFINE_integer("verbose", 1, "0: silent, 1: progress bar, 2: one line per epoch.",
                             lower_bound=0, upper_bound=2, **fv),
        flags.DEFINE_enum("strategy", "default", STRATEGY_NAMES, "tf.distribute strategy: "
                          "default (one device), mirrored (every GPU of this machine), "
                          "multi_worker (the machines TF_CONFIG lists; run the same command "
                          "on each, with a --model_dir they all see).", **fv),
        launcher.define_cpu_threads_flag(flag_values),
        # === Experiment ===
        flags.DEFINE_string("dataset", d.dataset, "Dataset from the registry, or several to "
                            "mix episode by episode (e.g. tiny_imagenet,omniglot): "
                            + ", ".join(data.list_datasets()) + ".", **fv),
        flags.DEFINE_enum("learner", d.learner, LEARNERS, "Meta-learning algorithm.", **fv),
        flags.DEFINE_integer("ways", d.ways, "Classes per training episode.", **fv),
        flags.DEFINE_integer("shots", d.shots, "Support examples per class (per task for "
                             "sinusoid) in training episodes.", **fv),
        flags.DEFINE_integer("queries", d.queries, "Query examples per class (per task for "
                             "sinusoid) in training episodes.", **fv),
        flags.DEFINE_integer("test_ways", d.test_ways, "Classes per evaluation episode "
                             "(validation, tfmeta-evaluate's default; default: --ways).", **fv),
        flags.DEFINE_integer("test_shots", d.test_shots, "Support examples per class in "
                             "evaluation (default: --shots).", **fv),
        flags.DEFINE_integer("test_queries", d.test_queries, "Query examples per class in "
                             "evaluation (default: --queries).", **fv),
        flags.DEFINE_enum("variable", d.variable, VARIABLE_EPISODES, "Meta-Dataset's variable "
                          "episodes (training and evaluation, padded with label -1): none; "
                          "shots (--ways fixed, shots and queries sampled); ways_and_shots "
                          "(ways uniform in [5, --ways], shots and queries sampled).", **fv),
        flags.DEFINE_integer("max_support", d.max_support, "Variable episodes: the most "
                             "support examples of an episode.", **fv),
        flags.DEFINE_integer("max_queries", d.max_queries, "Variable episodes: the most query "
                             "examples per class.", **fv),
        flags.DEFINE_integer("test_episodes", d.test_episodes, "Episodes tfmeta-evaluate "
                             "samples by default.", **fv),
        flags.DEFINE_integer("meta_batch_size", d.meta_batch_size, "Episodes (tasks) per "
                             "meta-optimizer step.", **fv),
        flags.DEFINE_integer("inner_steps", d.inner_steps, "MAML/Reptile: SGD steps on the "
                             "support set per task in meta-training.", **fv),
        flags.DEFINE_float("inner_learning_rate", d.inner_learning_rate, "MAML/Reptile: step "
                           "size of the inner SGD steps.", **fv),
        flags.DEFINE_integer("eval_inner_steps", d.eval_inner_steps, "MAML/Reptile: "
                             "adaptation steps in evaluation and in the exported model "
                             "(default: --inner_steps).", **fv),
        flags.DEFINE_boolean("first_order", d.first_order, "MAML: ignore second derivatives "
                             "(--learner=fomaml implies it).", **fv),
        flags.DEFINE_boolean("transductive", d.transductive, "MAML/Reptile: batch norm uses "
                             "each episode's statistics when evaluating (MAML's protocol).",
                             **fv),
        flags.DEFINE_enum("inner_optimizer", d.inner_optimizer, INNER_OPTIMIZERS,
                          "MAML/Reptile: the inner loop's optimizer, with fresh state for "
                          "every task (Reptile's paper: adam with --inner_adam_beta_1=0).", **fv),
        flags.DEFINE_float("inner_adam_beta_1", d.inner_adam_beta_1, "beta_1 of the inner Adam.",
                           **fv),
        flags.DEFINE_boolean("carry_inner_optimizer_state", d.carry_inner_optimizer_state,
                             "MAML/Reptile: the inner Adam's moments carry across training "
                             "tasks, and evaluation starts from them (supervised-reptile's "
                             "code).", **fv),
        flags.DEFINE_integer("inner_batch_size", d.inner_batch_size, "MAML/Reptile: support "
                             "examples per inner step, cycling through the support set "
                             "(default: all of them).", **fv),
        flags.DEFINE_enum("learn_inner_learning_rate", d.learn_inner_learning_rate,
                          LEARNED_RATES, "MAML: learned inner learning rates, per_parameter "
                          "(Meta-SGD) or per_step (MAML++ LSLR).", **fv),
        flags.DEFINE_integer("multi_step_loss_steps", d.multi_step_loss_steps, "MAML++: "
                             "meta-loss on the query set after every inner step, its weights "
                             "annealed to the last step over this many steps.", **fv),
        flags.DEFINE_integer("first_order_steps", d.first_order_steps, "MAML++: first-order "
                             "meta-gradients for this many steps, then second order.", **fv),
        flags.DEFINE_boolean("per_step_batch_norm", d.per_step_batch_norm, "MAML++: "
                             "batch-norm weights, biases and statistics per inner step.", **fv),
        flags.DEFINE_enum("optimizer", d.optimizer, OPTIMIZERS, "Meta-optimizer (Reptile's "
                          "outer step is sgd with --learning_rate as its step size).", **fv),
        flags.DEFINE_float("learning_rate", d.learning_rate, "(Initial) learning rate of the "
                           "meta-optimizer.", **fv),
        flags.DEFINE_enum("lr_decay", d.lr_decay, LR_DECAYS, "Learning-rate schedule: none; "
                          "step: times --lr_decay_rate every --lr_decay_episodes training "
                          "episodes; linear: down to --final_learning_rate at --train_steps; "
                          "cosine: cosine annealing to --final_learning_rate (MAML++).",
                          **fv),
        flags.DEFINE_integer("lr_decay_episodes", d.lr_decay_episodes, "Training episodes "
                             "between two step decays (ProtoNet: 2000).", **fv),
        flags.DEFINE_float("lr_decay_rate", d.lr_decay_rate, "Factor of each step decay.", **fv),
        flags.DEFINE_float("final_learning_rate", d.final_learning_rate, "Learning rate at the "
                           "end of a linear decay.", **fv),
        flags.DEFINE_integer("train_steps", d.train_steps, "Meta-optimizer steps in all "
                             "(rounded up to whole epochs).", **fv),
        flags.DEFINE_integer("steps_per_epoch", d.steps_per_epoch, "Steps per epoch: between "
                             "two checkpoints, validations and log lines.", **fv),
        flags.DEFINE_integer("validation_episodes", d.validation_episodes, "Validation "
                             "episodes after each epoch (0: no validation).", **fv),
        flags.DEFINE_integer("image_size", d.image_size, "Side of the square images.", **fv),
        flags.DEFINE_string("image_folder", d.image_folder, "--dataset=image_folder: the "
                            "folder <class>/<image> (or a zip of one).", **fv),
        flags.DEFINE_enum("scheme", d.scheme, SCHEMES, "Omniglot class split: vinyals "
                          "(ProtoNet), maml (MAML, Reptile) or lake (background/evaluation).",
                          **fv),
        flags.DEFINE_string("intent_dataset", d.intent_dataset, "--dataset=intents: the "
                            "folder under <root>/intent/ (banking77, hwu64, clinc150 or your "
                            "own in the same layout).", **fv),
        flags.DEFINE_integer("class_split", d.class_split, "--dataset=intents: the class "
                             "split, splits/0<class_split>/ (1..5).", **fv),
        flags.DEFINE_list("drop_intents", list(d.drop_intents), "--dataset=intents: intents "
                          "left out (e.g. a cross-domain target's), or groups: "
                          "clinc150_banking, clinc150_credit_cards.", **fv),
        flags.DEFINE_string("metaworld_task", d.metaworld_task, "--dataset=metaworld: the "
                            "task type (push-v3, pick-place-v3, reach-v3, ...), or all (every "
                            "type of the split: ML10, ML45).", **fv),
        flags.DEFINE_enum("metaworld_benchmark", d.metaworld_benchmark, METAWORLD_BENCHMARKS,
                          "--dataset=metaworld: ML1 (goals of one task type) or ML10/ML45 "
                          "(held-out task types in the test split).", **fv),
        flags.DEFINE_integer("metaworld_horizon", d.metaworld_horizon, "--dataset=metaworld: "
                             "steps of each demonstration and rollout (1..500).", **fv),
        flags.DEFINE_float("metaworld_action_noise", d.metaworld_action_noise,
                           "--dataset=metaworld: standard deviation of the Gaussian action "
                           "noise while recording demonstrations.", **fv),
        flags.DEFINE_integer("metaworld_demonstrations", d.metaworld_demonstrations,
                             "--dataset=metaworld: demonstrations recorded per goal.", **fv),
        flags.DEFINE_integer("metaworld_goals", d.metaworld_goals, "--dataset=metaworld: use "
                             "only the first this many goals of each task type (default: "
                             "all).", **fv),
        flags.DEFINE_enum("metaworld_starts", d.metaworld_starts, METAWORLD_STARTS,
                          "--dataset=metaworld: own (an episode is one goal's "
                          "demonstrations) or other_tasks (one task type's, across its goals, "
                          "as tfmeta-evaluate --rollouts --starts=other_tasks adapts).", **fv),
        flags.DEFINE_enum("metaworld_query_starts", d.metaworld_query_starts,
                          METAWORLD_QUERY_STARTS, "--dataset=metaworld: own (query "
                          "demonstrations from the support's start) or moved (from other "
                          "goals' object starts: adapt on one start, act from another).", **fv),
        flags.DEFINE_integer("metaworld_moved_demonstrations",
                             d.metaworld_moved_demonstrations, "--dataset=metaworld with "
                             "--metaworld_query_starts=moved: demonstrations recorded per goal "
                             "from moved starts, one start each.", **fv),
        flags.DEFINE_enum("backbone", d.backbone, BACKBONES, "Network: conv4 or resnet12 (images), "
                          "mlp, or "
                          "bag_of_ngrams (raw text; vocabulary adapted to the training "
                          "split's sentences).", **fv),
        flags.DEFINE_integer("embedding_dim", d.embedding_dim, "bag_of_ngrams: width of the "
                             "learned projection.", **fv),
        flags.DEFINE_integer("hash_buckets", d.hash_buckets, "bag_of_ngrams: also hashed word "
                             "and character n-grams in this many buckets, so that words "
                             "never seen in training get features (0: none).", **fv),
        flags.DEFINE_enum("distance", d.distance, DISTANCES, "ProtoNet: squared_euclidean "
                          "(the paper) or cosine (with a learned scale).", **fv),
        flags.DEFINE_integer("filters", d.filters, "conv4: filters of each convolution.", **fv),
        flags.DEFINE_enum("kernel_initializer", d.kernel_initializer, KERNEL_INITIALIZERS,
                          "conv4, resnet12: keras (Glorot-uniform kernels, zero biases) or "
                          "torch (PyTorch's default, kernels and biases uniform in "
                          "+-1/sqrt(fan_in)).", **fv),
        flags.DEFINE_list("hidden_units", [str(u) for u in d.hidden_units], "mlp: widths of "
                          "the hidden layers (ProtoNet: the last is the embedding).", **fv),
        flags.DEFINE_enum("output_activation", d.output_activation, OUTPUT_ACTIVATIONS,
                          "Regression mlp: activation of the output layer (tanh for actions "
                          "in [-1, 1]).", **fv),
        flags.DEFINE_list("adapt_layers", list(d.adapt_layers), "MAML: the only layers the "
                          "inner loop adapts (ANIL: output); default: every layer.", **fv),
        flags.DEFINE_enum("head_init", d.head_init, HEAD_INITS, "MAML: the output layer each "
                          "task starts from: none (the meta-learned one) or prototypes "
                          "(Proto-MAML: 2c_k and -|c_k|^2 of the support prototypes c_k; "
                          "--learner=proto_maml implies it).", **fv),
        flags.DEFINE_integer("seed", d.seed, "Seed of the initial weights and of the training "
                             "episodes.", **fv),
        flags.DEFINE_boolean("jit_compile", d.jit_compile, "Compile the train step with XLA "
                             "(measure first: on CPU it is often slower).", **fv),
    ]
    flags.mark_flag_as_required("model_dir", flag_values=flag_values)
    return holders


def experiment_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> Experiment:
    """The `Experiment` that parsed flags describe.

    Raises:
        ValueError: For inconsistent settings.

    """
    values = {field.name: flag_values[field.name].value
              for field in dataclasses.fields(Experiment)}
    return Experiment(**values)


def main(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Trains the experiment of the parsed flags (`argv` must hold no positional arguments)."""
    with launcher.errors_as_one_line(PROGRAM):
        if len(argv) > 1:
            raise ValueError(f"unexpected positional arguments {argv[1:]}; flags start with --")
        experiment = experiment_from_flags(flag_values)
        # Before TensorFlow runs an operation: its thread pools, and the multi-worker
        # strategy.
        cpu_threads_for(flag_values.cpu_threads, experiment.learner,
                        experiment.meta_batch_size)
        strategy = strategy_from_name(flag_values.strategy)
        already_trained = restored_epoch(flag_values.model_dir) >= experiment.epochs
        train(experiment, flag_values.model_dir, data_dir=flag_values.data_dir,
              verbose=flag_values.verbose, strategy=strategy)
        if already_trained:
            return
        steps = experiment.epochs * experiment.steps_per_epoch
        print(f"Trained {experiment.learner} for {steps} steps: {flag_values.model_dir}/"
              f"learner.keras. Next: tfmeta-evaluate --model_dir={flag_values.model_dir}")


def run() -> None:
    """The `tfmeta-train` console script."""
    launcher.launch(PROGRAM, __doc__, define_flags, main)


if __name__ == "__main__":
    run()
