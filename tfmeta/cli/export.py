"""Exports a trained learner as a SavedModel that adapts while serving: tfmeta-export.

Usage:
  tfmeta-export --model_dir=runs/sine --export_dir=exported/sine
  tfmeta-export --model_dir=runs/protonet --export_dir=exported/protonet.tflite --format=litert
      [--quantization=float16|dynamic_int8|int8]

Loads <model_dir>/learner.keras and writes learner.export(export_dir): a
SavedModel whose serving_default signature takes ONE episode, support_x
[S, ...] float32, support_y [S] and query_x [Q, ...] float32, and returns the
query predictions (MAML and Reptile adapt on the support set inside the
graph, with the experiment's eval_inner_steps). Any TensorFlow runtime can
serve it, e.g. tf.saved_model.load(export_dir).signatures["serving_default"].

With --format=litert, --export_dir is the .tflite file to write (learner.export_litert):
adapt, predict_adapted and serving_default on LiteRT's builtin ops, for phones and boards.
--quantization=int8 calibrates on --representative_episodes episodes of the run's
training split (from --data_dir or $TFMETA_DATA_DIR).
"""

from __future__ import annotations

from absl import flags

from tfmeta.cli import builders, launcher
from tfmeta.cli.evaluation import load_trained

PROGRAM = "tfmeta-export"


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> list[flags.FlagHolder]:
    """Defines tfmeta-export's flags on `flag_values` and returns their holders."""
    fv = {"flag_values": flag_values}
    holders = [
        flags.DEFINE_string("model_dir", None, "Folder of a run of tfmeta-train.", **fv),
        flags.DEFINE_string("export_dir", None, "Folder to write the SavedModel to (new or "
                            "empty), or the .tflite file with --format=litert.", **fv),
        flags.DEFINE_enum("format", "tf_saved_model", ["tf_saved_model", "litert"],
                          "What to write: a SavedModel or a LiteRT .tflite file.", **fv),
        flags.DEFINE_enum("quantization", "none", ["none", "float16", "dynamic_int8", "int8"],
                          "LiteRT quantization (with --format=litert).", **fv),
        flags.DEFINE_integer("representative_episodes", 32, "Training episodes that "
                             "calibrate --quantization=int8.", lower_bound=1, **fv),
        flags.DEFINE_string("data_dir", None, "Data root for --quantization=int8's training "
                            "episodes (default: $TFMETA_DATA_DIR).", **fv),
    ]
    flags.mark_flag_as_required("model_dir", flag_values=flag_values)
    flags.mark_flag_as_required("export_dir", flag_values=flag_values)
    return holders


def main(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Exports the run in `--model_dir` to `--export_dir`."""
    with launcher.errors_as_one_line(PROGRAM):
        if len(argv) > 1:
            raise ValueError(f"unexpected positional arguments {argv[1:]}; flags start with --")
        quantization = None if flag_values.quantization == "none" else flag_values.quantization
        if flag_values.format != "litert" and quantization is not None:
            raise ValueError(
                "Invalid value for flag `--quantization`: it applies to --format=litert. "
                f"Received: --quantization={quantization} with --format={flag_values.format}")
        learner, experiment = load_trained(flag_values.model_dir)
        if flag_values.format == "tf_saved_model":
            learner.export(flag_values.export_dir)
            print(f"Exported the SavedModel to {flag_values.export_dir} (serving_default: "
                  "support_x, support_y, query_x -> query predictions)")
            return
        representative = None
        if quantization == "int8":
            representative = builders.episodes(
                experiment, "train", ways=experiment.eval_ways, shots=experiment.eval_shots,
                queries=experiment.eval_queries, meta_batch_size=1,
                seed=0, data_dir=flag_values.data_dir).take(flag_values.representative_episodes)
        learner.export_litert(flag_values.export_dir, quantization=quantization,
                              representative_episodes=representative,
                              representative_steps=flag_values.representative_episodes)
        print(f"Exported the LiteRT model to {flag_values.export_dir} (signatures adapt, "
              "predict_adapted, serving_default)")


def run() -> None:
    """The `tfmeta-export` console script."""
    launcher.launch(PROGRAM, __doc__, define_flags, main)


if __name__ == "__main__":
    run()
