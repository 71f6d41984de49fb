"""Cross-domain rows of issue 28 for models that tfmeta-evaluate cannot load by itself.

    TFMETA_DATA_DIR=../shared/data .venv/bin/python benchmarks/domain_adaptation.py \
        --episodes_of runs/tiny_imagenet_protonet --model pixels --dataset omniglot \
        --image_size 32 --settings 5w1s 5w5s variable --output benchmarks/domain_results/x.json

Evaluates `--model` on exactly the episodes `tfmeta-evaluate --model_dir=<episodes_of>
--dataset=... --image_size=... --seed=...` draws (the same sampler, seed and conversion:
`tfmeta.cli.evaluation.evaluate` with that run's experiment), so its rows sit beside the
trained ProtoNet's on the same episodes. `--model`:

- `pixels`: nearest centroid on raw pixels (a ProtoNet whose encoder only flattens the
  converted image; squared Euclidean distance), a training-free baseline;
- `untrained`: a ProtoNet on a freshly initialised conv4 (the run's filters and
  initialisation), batch norm in inference mode, another training-free baseline;
- a `.keras` file of a `tfmeta.Baseline` (e.g. Baseline++ saved by `benchmarks/omniglot.py
  --save_model`): a fresh head fitted on every support set, as that learner does; for
  variable-way episodes its head gets the most ways (absent classes are masked).

Settings: `5w1s`, `5w5s` (`--queries` per class, 15 by default) and `variable`
(Meta-Dataset's variable ways and shots, at most 50 ways, 500 support examples, 10 queries
per class). Each setting's row
records wall time and CPU time (`time.process_time`, all threads of the process).
"""

import argparse
import dataclasses
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import cpu_model  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SETTINGS = {"5w1s": {"ways": 5, "shots": 1},
            "5w5s": {"ways": 5, "shots": 5},
            "variable": {"variable": "ways_and_shots", "max_support": 500, "max_queries": 10}}


def training_free(kind: str, experiment):
    """A ProtoNet that was never trained: raw pixels or a fresh conv4."""
    import keras

    import tfmeta
    from tfmeta.cli import builders

    shape = builders.example_shape(experiment)
    if kind == "pixels":
        encoder = keras.Sequential([keras.Input(shape), keras.layers.Flatten()], name="pixels")
    else:
        keras.utils.set_random_seed(experiment.seed)
        encoder = builders.backbone(dataclasses.replace(experiment, learner="protonet"))
    return tfmeta.ProtoNet(encoder)


def with_ways(baseline, ways: int):
    """The same pre-trained Baseline with an episode head of `ways` classes."""
    import tfmeta

    if baseline.ways == ways:
        return baseline
    return tfmeta.Baseline(
        baseline.encoder, num_classes=baseline.num_classes, head=baseline.head, ways=ways,
        fine_tune_steps=baseline.fine_tune_steps,
        fine_tune_optimizer=baseline.fine_tune_optimizer,
        fine_tune_batch_size=baseline.fine_tune_batch_size,
        cosine_scale=baseline.cosine_scale, seed=baseline.seed)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes_of", required=True,
                        help="a tfmeta-train run folder: its experiment defines the episodes")
    parser.add_argument("--model", required=True,
                        help="pixels, untrained, or a .keras file of a tfmeta.Baseline")
    parser.add_argument("--dataset", default=None, help="target dataset (default: the run's)")
    parser.add_argument("--image_size", type=int, default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--queries", type=int, default=15,
                        help="queries per class of the fixed settings")
    parser.add_argument("--variable_episodes", type=int, default=None,
                        help="episodes of the variable setting (default: --episodes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)

    import keras

    import tfmeta
    from tfmeta.cli import builders
    from tfmeta.cli.evaluation import evaluate
    from tfmeta.cli.experiment import Experiment

    experiment = Experiment.load(args.episodes_of)
    if args.model in ("pixels", "untrained"):
        learner = training_free(args.model, experiment)
        name = args.model
    else:
        learner = keras.saving.load_model(args.model, compile=False)
        if not isinstance(learner, tfmeta.Baseline):
            parser.error(f"--model: expected pixels, untrained or a .keras file of a "
                         f"tfmeta.Baseline. Received: {type(learner).__name__} in {args.model}")
        name = f"{'baseline++' if learner.head == 'cosine' else 'baseline'} ({args.model})"
    rows = []
    for setting in args.settings:
        options = dict(SETTINGS[setting])
        if setting != "variable":
            options["queries"] = args.queries
        episodes = (args.variable_episodes or args.episodes) if setting == "variable" else (
            args.episodes)
        model, ways = learner, options.get("ways", 50)
        as_run = experiment
        if isinstance(learner, tfmeta.Baseline):
            model = with_ways(learner, ways)
            # A Baseline's head is `ways` wide: evaluate as a run of that many ways.
            as_run = dataclasses.replace(experiment, learner="maml", ways=ways,
                                         test_ways=None)
        builders.compile_learner(model, as_run)
        started, cpu = time.perf_counter(), time.process_time()
        result = evaluate(model, as_run, split=args.split, episodes=episodes, seed=args.seed,
                          data_dir=args.data_dir, dataset=args.dataset,
                          image_size=args.image_size, **options)
        row = {"setting": setting, **result.to_dict(),
               "wall_time_s": round(time.perf_counter() - started, 1),
               "cpu_time_s": round(time.process_time() - cpu, 1)}
        rows.append(row)
        print(f"{name} {setting}: {result} (wall {row['wall_time_s']} s, CPU "
              f"{row['cpu_time_s']} s)", flush=True)
        write_report(args, argv, name, experiment, rows)  # Each setting as it is done.
    return write_report(args, argv, name, experiment, rows)


def write_report(args, argv, name: str, experiment, rows: list) -> dict:
    report = {
        "model": name, "episodes_of": str(args.episodes_of),
        "dataset": args.dataset or experiment.dataset, "image_size": args.image_size,
        "split": args.split, "seed": args.seed, "rows": rows,
        "hardware": f"{cpu_model(platform.processor() or platform.machine())}, "
                    f"{os.cpu_count()} cores (CPU only, shared)",
        "command": "TFMETA_DATA_DIR=../shared/data .venv/bin/python " + shlex.join(
            ["benchmarks/domain_adaptation.py", *(sys.argv[1:] if argv is None else argv)]),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
