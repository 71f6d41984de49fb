"""Omniglot and Tiny ImageNet accuracy of tfmeta's learners with the papers' recipes.

    TFMETA_DATA_DIR=../shared/data .venv/bin/python benchmarks/omniglot.py \
        --learner protonet --setting 5w1s --train_episodes 1250 --eval_every 250 \
        --test_episodes 1000 --output_dir benchmarks/omniglot_results

Trains from scratch, evaluates on the validation split every `--eval_every` training
iterations (the learning curve), then on `--test_episodes` test episodes, and writes
`<learner>_<setting>.json` (the table row, the curve, the exact command),
`<learner>_<setting>.png` (the curve) and `results.csv` (every JSON row in the folder).

An iteration is one optimizer step on one meta-batch; for ProtoNet (one episode per
meta-batch) iterations and episodes are the same count.

Recipes (see `recipe`):
- protonet: Snell et al. (2017) / jakesnell/prototypical-networks: Vinyals split with
  rotations, 28x28, train 60-way with the test shots and 5 queries per class, Adam 1e-3
  halved every 2,000 episodes, test 1,000 episodes with 15 queries per class, batch norm
  with moving statistics at test time (as PyTorch `eval()`).
- maml / fomaml: Finn et al. (2017) / cbfinn/maml: MAML split (1,100 / 100 / 423
  characters, rotations), 28x28, Adam 1e-3, queries per class = shots; 5-way: meta-batch
  32, inner lr 0.4, 1 step (10 at test); 20-way: meta-batch 16, inner lr 0.1, 5 steps
  (10 at test); transductive batch norm; test 600 episodes.
- reptile: openai/supervised-reptile's README commands (configs/omniglot_reptile_*.cfg):
  inner Adam (beta1=0) on support mini-batches, its moments carried across training tasks
  as in that code (`--fresh_inner_state`: fresh for every task), outer SGD step 1
  annealed linearly to 0, meta-batch 5, 10 training shots per class, 50 inner steps at test;
  5-way: inner batch 10, 5 steps, Adam 1e-3; 20-way: batch 20, 10 steps, 5e-4. Tests use 1
  query per class (supervised-reptile's evaluation) and transductive batch norm (the paper's
  97.68 / 99.48 are its transductive rows).
- mamlpp: Antoniou et al. (2019) / configs/omniglot_mamlpp_5w1s.cfg: MAML split, meta-batch
  8, 5 inner steps (5 at test) from 0.1 with learned per-step rates, multi-step loss annealed
  over the first tenth of the iterations (the authors: 10 of 100 epochs), per-step batch
  norm, Adam 1e-3 cosine-annealed to 1e-5, one query per class in training.
- baseline / baselinepp: Chen et al. (2019): conv4 pre-trained as a classifier of the 4,112
  Vinyals training classes (batches of 64, Adam 1e-3; linear or cosine head), then a fresh
  5-way head per test episode (100 SGD steps, momentum 0.9, lr 0.01, batches of 4).
- metabaseline: Chen et al. (2021): the same pre-trained encoder (linear head) turned into
  cosine prototypes (`Baseline.to_protonet`, learnable temperature), then its meta-stage:
  `--meta_stage_episodes` episodes of the test setting (15 queries per class) with SGD 1e-3,
  momentum 0.9, as the paper (0: Classifier-Baseline, evaluated without the meta-stage).
  For the three pre-training rows an "iteration" is one batch of 64 examples.

`--dataset tiny_imagenet` (Tiny ImageNet's 120/40/40 few-shot classes, `--image_size`, 32
by default, as the ProtoNet rows' curve) uses each paper's mini-ImageNet recipe instead
(`tiny_imagenet_recipe`): 5-way training with 15 queries per class and tests of 600
episodes with 15 queries per class (1 for Reptile, as its code), and writes
`tiny_imagenet_<learner>_<setting>.json` to `benchmarks/tiny_imagenet_results`.
"""

import argparse
import dataclasses
import functools
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import cpu_model  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SETTINGS = {"5w1s": (5, 1), "5w5s": (5, 5), "20w1s": (20, 1), "20w5s": (20, 5)}
DATASETS = ("omniglot", "tiny_imagenet")
TINY_IMAGENET_TRAIN_CLASSES = 120

# Published test accuracies (%), for the table only; never used as tfmeta numbers.
PUBLISHED = {
    "maml": {"5w1s": 98.7, "5w5s": 99.9, "20w1s": 95.8, "20w5s": 98.9},
    "fomaml": {"5w1s": 98.3, "5w5s": 99.2, "20w1s": 89.4, "20w5s": 97.9},
    "protonet": {"5w1s": 98.8, "5w5s": 99.7, "20w1s": 96.0, "20w5s": 98.9},
    "reptile": {"5w1s": 97.68, "5w5s": 99.48, "20w1s": 89.43, "20w5s": 97.12},
    "mamlpp": {"5w1s": 99.47, "5w5s": 99.93, "20w1s": 97.65, "20w5s": 99.33},
    # Chen et al. (2019) report Omniglot only cross-domain; no published row to compare.
    "baseline": {}, "baselinepp": {}, "metabaseline": {},
}
PRETRAINED = ("baseline", "baselinepp", "metabaseline")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Every hyperparameter of one (learner, setting) run."""

    learner: str
    ways: int  # test ways
    shots: int  # test shots
    scheme: str
    train_ways: int
    train_shots: int
    train_queries: int  # per class
    meta_batch_size: int
    test_queries: int  # per class
    learning_rate: float
    lr_schedule: str  # "halve:<episodes>" | "linear_to_zero" | "constant"
    inner_steps: int = 0
    inner_learning_rate: float = 0.0
    eval_inner_steps: int = 0
    first_order: bool = False
    inner_adam: bool = False  # inner Adam with beta_1 = 0 (Reptile's paper)
    carry_inner_state: bool = False  # the inner Adam's moments persist across tasks (its code)
    inner_batch_size: int | None = None
    transductive: bool = True
    meta_stage_episodes: int = 0  # Meta-Baseline's episodic stage after pre-training
    dataset: str = "omniglot"
    image_size: int = 28
    filters: int = 64  # conv4's filters
    kernel_initializer: str = "torch"  # conv4's "torch" (PyTorch's rule) or "keras" (Glorot)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        channels = 1 if self.dataset == "omniglot" else 3
        return (self.image_size, self.image_size, channels)

    @property
    def data_options(self) -> dict:
        """The dataset's registry options for this recipe (episodes and batches alike)."""
        options = {"image_size": self.image_size}
        if self.dataset == "omniglot":
            options["scheme"] = self.scheme
        return options

    def episodes(self, split: str, ways: int, shots: int, queries: int, meta_batch_size: int,
                 seed: int, data_dir):
        """The dataset's episodes through the registry, with this recipe's options."""
        import tfmeta

        return tfmeta.data.get_dataset(self.dataset).episodes(
            split, ways=ways, shots=shots, queries=queries, meta_batch_size=meta_batch_size,
            seed=seed, data_dir=data_dir, **self.data_options)


def recipe(learner: str, setting: str, inner_lr: float | None = None) -> Recipe:
    ways, shots = SETTINGS[setting]
    if learner == "protonet":
        return Recipe(learner, ways, shots, "vinyals", train_ways=60, train_shots=shots,
                      train_queries=5, meta_batch_size=1, test_queries=15,
                      learning_rate=1e-3, lr_schedule="halve:2000")
    if learner in ("maml", "fomaml"):
        five_way = ways == 5
        return Recipe(learner, ways, shots, "maml", train_ways=ways, train_shots=shots,
                      train_queries=shots, meta_batch_size=32 if five_way else 16,
                      test_queries=shots, learning_rate=1e-3, lr_schedule="constant",
                      inner_steps=1 if five_way else 5,
                      inner_learning_rate=inner_lr or (0.4 if five_way else 0.1),
                      eval_inner_steps=10, first_order=learner == "fomaml")
    if learner == "reptile":
        # openai/supervised-reptile's README commands (the paper's Table 3): 10 training
        # shots, Adam (beta1=0) on inner mini-batches, 50 inner steps at test, outer step 1
        # annealed to 0; 5-way: batch 10, 5 steps, lr 1e-3; 20-way: batch 20, 10 steps, 5e-4.
        five_way = ways == 5
        return Recipe(learner, ways, shots, "maml", train_ways=ways, train_shots=10,
                      train_queries=1, meta_batch_size=5, test_queries=1,
                      learning_rate=1.0, lr_schedule="linear_to_zero",
                      inner_steps=5 if five_way else 10,
                      inner_learning_rate=inner_lr or (0.001 if five_way else 0.0005),
                      eval_inner_steps=50, inner_adam=True, carry_inner_state=True,
                      inner_batch_size=10 if five_way else 20, transductive=True)
    if learner == "mamlpp":
        return Recipe(learner, ways, shots, "maml", train_ways=ways, train_shots=shots,
                      train_queries=1, meta_batch_size=8, test_queries=1, learning_rate=1e-3,
                      lr_schedule="cosine", inner_steps=5, inner_learning_rate=inner_lr or 0.1,
                      eval_inner_steps=5)
    if learner in PRETRAINED:
        return Recipe(learner, ways, shots, "vinyals", train_ways=0, train_shots=0,
                      train_queries=0, meta_batch_size=64, test_queries=15, learning_rate=1e-3,
                      lr_schedule="constant", inner_steps=100, inner_learning_rate=0.01,
                      inner_batch_size=4, transductive=False)
    raise ValueError(f"Invalid value for argument `learner`: expected one of protonet, maml, "
                     f"fomaml, reptile, mamlpp, {', '.join(PRETRAINED)}. Received: "
                     f"learner={learner!r}")


def tiny_imagenet_recipe(learner: str, setting: str, image_size: int = 32,
                         inner_lr: float | None = None) -> Recipe:
    """Each paper's mini-ImageNet recipe, on Tiny ImageNet's few-shot split.

    - protonet: Snell et al. section 3.2 (configs/tiny_imagenet_protonet_*.cfg): 30-way
      (1-shot) or 20-way (5-shot) training episodes, 15 queries, Adam 1e-3 halved every
      2,000 episodes, moving batch-norm statistics at test.
    - maml / fomaml: Finn et al. appendix A.1 (configs/tiny_imagenet_maml_*.cfg): conv4-32,
      5 inner steps of 0.01 (10 at test), meta-batch 4 (1-shot) or 2 (5-shot).
    - reptile: supervised-reptile's mini-ImageNet commands: conv4-32, 15 training shots,
      inner Adam (beta1=0, 1e-3, state carried) for 8 steps on batches of 10, meta-batch 5,
      outer step 1 annealed to 0, 50 inner steps at test on the same cyclic batches of 10
      (its code evaluates on batches of 5 for 1-shot and 15 for 5-shot).
    - mamlpp: Antoniou et al.'s mini-ImageNet set-up: conv4-48, meta-batch 2, 5 inner steps
      (learned per-step rates from 0.01), per-step batch norm, multi-step loss, cosine Adam.
    - baseline / baselinepp / metabaseline: Chen et al. (2019): conv4-64 pre-trained on the
      120 training classes in batches of 16 with Adam 1e-3; fine-tuning as on Omniglot.
    """
    ways, shots = SETTINGS[setting]
    common = {"dataset": "tiny_imagenet", "image_size": image_size, "scheme": ""}
    one_shot = shots == 1
    if learner == "protonet":
        return Recipe(learner, ways, shots, train_ways=30 if one_shot else 20, train_shots=shots,
                      train_queries=15, meta_batch_size=1, test_queries=15,
                      learning_rate=1e-3, lr_schedule="halve:2000", transductive=False,
                      **common)
    if learner in ("maml", "fomaml"):
        return Recipe(learner, ways, shots, train_ways=ways, train_shots=shots,
                      train_queries=15, meta_batch_size=4 if one_shot else 2, test_queries=15,
                      learning_rate=1e-3, lr_schedule="constant", inner_steps=5,
                      inner_learning_rate=inner_lr or 0.01, eval_inner_steps=10,
                      first_order=learner == "fomaml", filters=32, **common)
    if learner == "reptile":
        return Recipe(learner, ways, shots, train_ways=ways, train_shots=15, train_queries=1,
                      meta_batch_size=5, test_queries=1, learning_rate=1.0,
                      lr_schedule="linear_to_zero", inner_steps=8,
                      inner_learning_rate=inner_lr or 0.001, eval_inner_steps=50,
                      inner_adam=True, carry_inner_state=True, inner_batch_size=10,
                      filters=32, **common)
    if learner == "mamlpp":
        return Recipe(learner, ways, shots, train_ways=ways, train_shots=shots,
                      train_queries=15, meta_batch_size=2, test_queries=15, learning_rate=1e-3,
                      lr_schedule="cosine", inner_steps=5, inner_learning_rate=inner_lr or 0.01,
                      eval_inner_steps=5, filters=48, **common)
    if learner in PRETRAINED:
        return Recipe(learner, ways, shots, train_ways=0, train_shots=0, train_queries=0,
                      meta_batch_size=16, test_queries=15, learning_rate=1e-3,
                      lr_schedule="constant", inner_steps=100, inner_learning_rate=0.01,
                      inner_batch_size=4, transductive=False, **common)
    return recipe(learner, setting)  # raises the same error for an unknown learner


def build_learner(r: Recipe, iterations: int, steps_per_execution: int = 1):
    import keras

    import tfmeta

    conv4 = functools.partial(tfmeta.backbones.conv4, kernel_initializer=r.kernel_initializer)
    if r.learner == "protonet":
        learner = tfmeta.ProtoNet(conv4(r.input_shape, filters=r.filters))
    elif r.learner in ("maml", "fomaml"):
        learner = tfmeta.MAML(
            conv4(r.input_shape, filters=r.filters, num_classes=r.ways),
            inner_steps=r.inner_steps, inner_learning_rate=r.inner_learning_rate,
            first_order=r.first_order, eval_inner_steps=r.eval_inner_steps, transductive=True)
    elif r.learner == "mamlpp":
        learner = tfmeta.MAML(
            conv4(r.input_shape, filters=r.filters, num_classes=r.ways),
            inner_steps=r.inner_steps, inner_learning_rate=r.inner_learning_rate,
            eval_inner_steps=r.eval_inner_steps, transductive=True,
            learn_inner_learning_rate="per_step", per_step_batch_norm=True,
            multi_step_loss_steps=max(1, iterations // 10))
    elif r.learner in PRETRAINED:
        learner = tfmeta.Baseline(
            conv4(r.input_shape, filters=r.filters),
            num_classes=4112 if r.dataset == "omniglot" else TINY_IMAGENET_TRAIN_CLASSES,
            head="cosine" if r.learner == "baselinepp" else "linear", ways=r.ways,
            fine_tune_steps=r.inner_steps, fine_tune_batch_size=r.inner_batch_size,
            fine_tune_optimizer=keras.optimizers.SGD(r.inner_learning_rate, momentum=0.9))
    else:
        inner_optimizer = (keras.optimizers.Adam(r.inner_learning_rate, beta_1=0.0)
                           if r.inner_adam else "sgd")
        learner = tfmeta.Reptile(
            conv4(r.input_shape, filters=r.filters, num_classes=r.ways),
            inner_steps=r.inner_steps, inner_learning_rate=r.inner_learning_rate,
            eval_inner_steps=r.eval_inner_steps, transductive=r.transductive,
            inner_optimizer=inner_optimizer, inner_batch_size=r.inner_batch_size,
            carry_inner_optimizer_state=r.carry_inner_state)
    if r.lr_schedule.startswith("halve:"):
        every_episodes = int(r.lr_schedule.split(":")[1])
        rate = keras.optimizers.schedules.ExponentialDecay(
            r.learning_rate, decay_steps=max(1, every_episodes // r.meta_batch_size),
            decay_rate=0.5, staircase=True)
    elif r.lr_schedule == "linear_to_zero":
        rate = keras.optimizers.schedules.PolynomialDecay(r.learning_rate, iterations, 0.0)
    elif r.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(r.learning_rate, iterations,
                                                      alpha=1e-5 / r.learning_rate)
    else:
        rate = r.learning_rate
    optimizer = (keras.optimizers.SGD(rate) if r.learner == "reptile"
                 else keras.optimizers.Adam(rate))
    learner.compile(optimizer=optimizer,
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"], steps_per_execution=steps_per_execution)
    return learner


def meta_stage(baseline, r: Recipe, seed: int, data_dir, timer: dict):
    """Meta-Baseline's second stage: the pre-trained encoder trained as cosine prototypes."""
    import keras


    learner = baseline.to_protonet()
    learner.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
    episodes = r.episodes("train", r.ways, r.shots, 15, 1, seed + 3, data_dir).prefetch(2)
    start = time.perf_counter()
    learner.fit(episodes, epochs=1, steps_per_epoch=r.meta_stage_episodes, verbose=0)
    timer["train"] += time.perf_counter() - start
    acc, ci = evaluate(learner, r, "validation", 200, seed + 1, data_dir)
    print(f"  meta-stage {r.meta_stage_episodes} episodes  val {acc:.2f} ± {ci:.2f}%  "
          f"({timer['train']:.0f}s training)", flush=True)
    return learner, {"episodes": r.meta_stage_episodes, "validation_accuracy": acc,
                     "ci95": ci, "train_time_s": timer["train"]}


def eval_meta_batch(episodes: int, largest: int = 50) -> int:
    """The largest meta-batch up to `largest` that divides `episodes`."""
    return max(b for b in range(1, largest + 1) if episodes % b == 0)


def hardware() -> str:
    model = cpu_model(platform.processor() or platform.machine())
    return f"{model}, {os.cpu_count()} cores (CPU only, shared)"


def evaluate(learner, r: Recipe, split: str, episodes: int, seed: int, data_dir, largest=50):
    import tfmeta

    if isinstance(learner, tfmeta.Baseline) and r.learner == "metabaseline":
        learner = learner.to_protonet()
        learner.compile(loss=__import__("keras").losses.SparseCategoricalCrossentropy(
            from_logits=True), metrics=["accuracy"])
    batch = eval_meta_batch(episodes, largest)
    dataset = r.episodes(split, r.ways, r.shots, r.test_queries, batch, seed, data_dir)
    if r.learner != "protonet":
        # A dynamic meta-batch size makes MAML/Reptile run tasks through tf.map_fn: one
        # traced task instead of `batch` unrolled copies of `eval_inner_steps` steps each.
        dataset = dataset.unbatch().batch(batch)
    logs = learner.evaluate(dataset, steps=episodes // batch, verbose=0, return_dict=True)
    return 100.0 * logs["accuracy"], 100.0 * logs["accuracy_ci95"]


def plot_curve(curve, row, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    x = [c["episodes"] for c in curve]
    y = [c["accuracy"] for c in curve]
    e = [c["ci95"] for c in curve]
    ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label="validation (tfmeta)")
    ax.errorbar([row["episodes"]], [row["accuracy"]], yerr=[row["ci95"]], marker="s",
                color="C3", capsize=3, linestyle="none", label="test (tfmeta)")
    published = row.get("published")
    if published is not None:
        ax.axhline(published, color="gray", linestyle="--", label=f"published {published}%")
    ax.set_xlabel("training episodes")
    ax.set_ylabel("accuracy (%)")
    dataset = {"omniglot": "Omniglot", "tiny_imagenet": "Tiny ImageNet"}[row.get("dataset",
                                                                              "omniglot")]
    ax.set_title(f"{dataset} {row['setting']} {row['learner']} ({row['iterations']} "
                 "iterations)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_csv(output_dir: Path) -> None:
    keys = ["learner", "setting", "iterations", "episodes", "accuracy", "ci95",
            "test_episodes", "wall_time_s", "train_time_s", "hardware", "command"]
    lines = [",".join(keys)]
    for path in sorted(output_dir.glob("*.json")):
        row = json.loads(path.read_text())
        lines.append(",".join(json.dumps(row.get(k)) if isinstance(row.get(k), str)
                              else str(row.get(k)) for k in keys))
    (output_dir / "results.csv").write_text("\n".join(lines) + "\n")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learner", required=True,
                        choices=list(PUBLISHED))
    parser.add_argument("--setting", required=True, choices=list(SETTINGS))
    parser.add_argument("--dataset", default="omniglot", choices=DATASETS)
    parser.add_argument("--image_size", type=int, default=32,
                        help="tiny_imagenet: side of the images (64 is native)")
    length = parser.add_mutually_exclusive_group(required=True)
    length.add_argument("--train_episodes", type=int, help="training episodes (tasks)")
    length.add_argument("--train_steps", type=int, help="training iterations (meta-batches)")
    parser.add_argument("--eval_every", type=int, default=0,
                        help="iterations between validation points (0: none)")
    parser.add_argument("--curve_episodes", type=int, default=200,
                        help="validation episodes per curve point")
    parser.add_argument("--test_episodes", type=int, default=None,
                        help="test episodes (default 1000 for protonet, 600 otherwise)")
    parser.add_argument("--inner_lr", type=float, default=None,
                        help="override the recipe's inner learning rate")
    parser.add_argument("--inner_steps", type=int, default=None,
                        help="override the recipe's inner steps during training")
    parser.add_argument("--train_queries", type=int, default=None,
                        help="override the recipe's training queries per class")
    parser.add_argument("--fresh_inner_state", action="store_true",
                        help="reptile: start every task's inner Adam from fresh state instead "
                             "of carrying it across tasks as supervised-reptile's code does")
    parser.add_argument("--train_shots", type=int, default=None,
                        help="override the recipe's training shots (e.g. 5 for ProtoNet 5w1s "
                             "as in tests/learners/test_protonet_omniglot.py)")
    parser.add_argument("--meta_stage_episodes", type=int, default=0,
                        help="metabaseline: episodes of the meta-stage after pre-training")
    parser.add_argument("--also_test", nargs="*", default=[], choices=list(SETTINGS),
                        help="also test the trained model on these settings' test episodes "
                             "(recorded under `also_tested`; same ways as trained for MAML)")
    parser.add_argument("--steps_per_execution", type=int, default=1)
    parser.add_argument("--policy", default=None,
                        help="Keras dtype policy of the model, e.g. mixed_bfloat16 (opt-in)")
    parser.add_argument("--kernel_initializer", default="torch", choices=["keras", "torch"],
                        help="conv4's initialisation: PyTorch's uniform(+-1/sqrt(fan_in)) "
                             "kernels and biases (conv4's default since issue 28), or Keras' "
                             "Glorot-uniform kernels and zero biases (the rows before it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data_dir", default=None, help="default: $TFMETA_DATA_DIR")
    parser.add_argument("--output_dir", default=None,
                        help="default: benchmarks/<dataset>_results")
    parser.add_argument("--tag", default="", help="suffix of the output file names")
    parser.add_argument("--save_model", default=None,
                        help="also save the trained learner to this .keras file (e.g. for "
                             "benchmarks/domain_adaptation.py)")
    args = parser.parse_args(argv)

    import keras

    if args.dataset == "tiny_imagenet":
        r = tiny_imagenet_recipe(args.learner, args.setting, args.image_size, args.inner_lr)
    else:
        r = recipe(args.learner, args.setting, args.inner_lr)
    if args.train_shots is not None:
        r = dataclasses.replace(r, train_shots=args.train_shots)
    r = dataclasses.replace(r, kernel_initializer=args.kernel_initializer)
    if args.fresh_inner_state:
        r = dataclasses.replace(r, carry_inner_state=False)
    if args.inner_steps is not None:
        r = dataclasses.replace(r, inner_steps=args.inner_steps)
    if args.train_queries is not None:
        r = dataclasses.replace(r, train_queries=args.train_queries)
    if args.meta_stage_episodes:
        if r.learner != "metabaseline":
            parser.error("--meta_stage_episodes applies to --learner metabaseline only")
        r = dataclasses.replace(r, meta_stage_episodes=args.meta_stage_episodes)
    if args.train_steps is not None:
        iterations = args.train_steps
    else:
        iterations = math.ceil(args.train_episodes / r.meta_batch_size)
    test_episodes = args.test_episodes or (1000 if r.learner == "protonet" else 600)
    eval_every = args.eval_every or iterations
    spe = math.gcd(args.steps_per_execution, eval_every, iterations)
    output_dir = Path(args.output_dir or f"benchmarks/{args.dataset}_results")
    output_dir.mkdir(parents=True, exist_ok=True)
    name = f"{r.learner}_{args.setting}{args.tag}"
    if r.dataset != "omniglot":
        name = f"{r.dataset}_{name}"
    command = "TFMETA_DATA_DIR=../shared/data .venv/bin/python " + shlex.join(
        ["benchmarks/omniglot.py", *(sys.argv[1:] if argv is None else argv)])
    print(f"{name}: {r}\n{iterations} iterations, eval every {eval_every}", flush=True)

    import tfmeta

    keras.utils.set_random_seed(args.seed)
    if args.policy:
        keras.config.set_dtype_policy(args.policy)
    learner = build_learner(r, iterations, spe)
    if r.learner in PRETRAINED:
        train = tfmeta.data.batches(r.dataset, "train", batch_size=r.meta_batch_size,
                                    seed=args.seed, data_dir=args.data_dir, **r.data_options)
    else:
        train = r.episodes("train", r.train_ways, r.train_shots, r.train_queries,
                           r.meta_batch_size, args.seed, args.data_dir).prefetch(2)

    curve = []
    timer = {"train": 0.0, "eval": 0.0}

    class Curve(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            timer["train"] += time.perf_counter() - self.start
            done = (epoch + 1) * eval_every
            if done >= iterations and not args.eval_every:
                return
            start = time.perf_counter()
            acc, ci = evaluate(learner, r, "validation", args.curve_episodes, args.seed + 1,
                               args.data_dir)
            timer["eval"] += time.perf_counter() - start
            point = {"iterations": done, "episodes": done * r.meta_batch_size,
                     "accuracy": acc, "ci95": ci,
                     "train_accuracy": 100 * logs.get("accuracy", logs.get("batch_accuracy")),
                     "train_time_s": timer["train"]}
            curve.append(point)
            print(f"  {point['episodes']:>7} episodes  val {acc:.2f} ± {ci:.2f}%  "
                  f"train {point['train_accuracy']:.2f}%  loss {logs['loss']:.4f}  "
                  f"({timer['train']:.0f}s training)", flush=True)

    started = time.perf_counter()
    learner.fit(train, epochs=iterations // eval_every, steps_per_epoch=eval_every,
                callbacks=[Curve()], verbose=0)
    after_meta_stage = None
    if r.meta_stage_episodes:
        learner, after_meta_stage = meta_stage(learner, r, args.seed, args.data_dir, timer)
    if args.save_model:
        Path(args.save_model).parent.mkdir(parents=True, exist_ok=True)
        learner.save(args.save_model)
    start = time.perf_counter()
    accuracy, ci95 = evaluate(learner, r, "test", test_episodes, args.seed + 2, args.data_dir)
    test_time = time.perf_counter() - start
    also_tested = []
    for setting in args.also_test:
        other = dataclasses.replace(r, ways=SETTINGS[setting][0], shots=SETTINGS[setting][1],
                                    test_queries=recipe(r.learner, setting).test_queries
                                    if r.dataset == "omniglot" else r.test_queries)
        acc, ci = evaluate(learner, other, "test", test_episodes, args.seed + 2, args.data_dir)
        also_tested.append({"setting": setting, "accuracy": round(acc, 2), "ci95": round(ci, 2),
                            "test_episodes": test_episodes})
        print(f"  also {setting}: test {acc:.2f} ± {ci:.2f}%", flush=True)
    row = {
        "learner": r.learner, "setting": args.setting, "dataset": r.dataset,
        "image_size": r.image_size, "iterations": iterations,
        "episodes": iterations * r.meta_batch_size,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "train_time_s": round(timer["train"], 1), "curve_eval_time_s": round(timer["eval"], 1),
        "test_time_s": round(test_time, 1), "hardware": hardware(),
        "accuracy": round(accuracy, 2), "ci95": round(ci95, 2),
        "test_episodes": test_episodes, "test_queries_per_class": r.test_queries,
        # No paper reports these learners on Tiny ImageNet's few-shot split.
        "published": PUBLISHED[r.learner].get(args.setting) if r.dataset == "omniglot" else None,
        "command": command,
        "recipe": dataclasses.asdict(r), "tensorflow": __import__("tensorflow").__version__,
        "also_tested": also_tested, "curve": curve,
    }
    if after_meta_stage:
        row["meta_stage"] = after_meta_stage
    (output_dir / f"{name}.json").write_text(json.dumps(row, indent=1) + "\n")
    plot_curve(curve, row, output_dir / f"{name}.png")
    write_csv(output_dir)
    print(f"{name}: test {accuracy:.2f} ± {ci95:.2f}% over {test_episodes} episodes after "
          f"{row['episodes']} episodes ({iterations} iterations); wall {row['wall_time_s']}s "
          f"(training {row['train_time_s']}s) on {row['hardware']}", flush=True)
    return row


if __name__ == "__main__":
    main()
