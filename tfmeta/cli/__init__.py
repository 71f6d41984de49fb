"""Command-line tools: `tfmeta-train`, `tfmeta-evaluate`, `tfmeta-export` and the demo.

The console scripts are thin: each command module (`train`, `evaluate`,
`export`, `demo`) defines its absl flags, turns them into plain values and
calls the flag-free building blocks below, which the demo and the tests use
directly:

- `tfmeta.cli.experiment`: `Experiment`, every setting of a training run,
  saved as `experiment.json` next to the trained learner.
- `tfmeta.cli.builders`: the datasets, backbone, learner and optimizer of an
  `Experiment`.
- `tfmeta.cli.training`: `train(experiment, model_dir)`, resumable.
- `tfmeta.cli.evaluation`: `load_trained(model_dir)` and `evaluate(...)`,
  the mean and 95% confidence interval over test episodes.
- `tfmeta.cli.paths`: output folders and files checked before any work,
  written atomically, and the lock of a `--model_dir`.
- `tfmeta.cli.launcher`: flags and errors as one line on stderr.

Only this package reads absl flags; the library takes keyword arguments.
"""
