"""Exports a trained learner as a SavedModel that adapts while serving: tfmeta-export.

Usage:
  tfmeta-export --model_dir=runs/sine --export_dir=exported/sine

Loads <model_dir>/learner.keras and writes learner.export(export_dir): a
SavedModel whose serving_default signature takes ONE episode, support_x
[S, ...] float32, support_y [S] and query_x [Q, ...] float32, and returns the
query predictions (MAML and Reptile adapt on the support set inside the
graph, with the experiment's eval_inner_steps). Any TensorFlow runtime can
serve it, e.g. tf.saved_model.load(export_dir).signatures["serving_default"].
"""

from __future__ import annotations

from absl import flags

from tfmeta.cli import launcher
from tfmeta.cli.evaluation import load_trained

PROGRAM = "tfmeta-export"


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> list[flags.FlagHolder]:
    """Defines tfmeta-export's flags on `flag_values` and returns their holders."""
    fv = {"flag_values": flag_values}
    holders = [
        flags.DEFINE_string("model_dir", None, "Folder of a run of tfmeta-train.", **fv),
        flags.DEFINE_string("export_dir", None, "Folder to write the SavedModel to (new or "
                            "empty).", **fv),
    ]
    flags.mark_flag_as_required("model_dir", flag_values=flag_values)
    flags.mark_flag_as_required("export_dir", flag_values=flag_values)
    return holders


def main(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Exports the run in `--model_dir` to `--export_dir`."""
    with launcher.errors_as_one_line(PROGRAM):
        if len(argv) > 1:
            raise ValueError(f"unexpected positional arguments {argv[1:]}; flags start with --")
        learner, _ = load_trained(flag_values.model_dir)
        learner.export(flag_values.export_dir)
        print(f"Exported the SavedModel to {flag_values.export_dir} (serving_default: "
              "support_x, support_y, query_x -> query predictions)")


def run() -> None:
    """The `tfmeta-export` console script."""
    launcher.launch(PROGRAM, __doc__, define_flags, main)


if __name__ == "__main__":
    run()
