"""LiteRT export of a learner: one `.tflite` file that adapts on the device, builtin ops only."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import tensorflow as tf

from tfmeta.export.export_learner import export_learner
from tfmeta.export.litert_model import SIGNATURES, vocabulary_path, with_metadata
from tfmeta.export.token_ids import token_id_learner, vectorizer_description, write_vocabulary

QUANTIZATIONS = (None, "float16", "dynamic_int8", "int8")


def export_litert(
    learner: Any,
    filepath: str | os.PathLike,
    quantization: str | None = None,
    representative_episodes: Iterable | Callable[[], Iterable] | None = None,
    *,
    overwrite: bool = False,
    representative_steps: int = 32,
    **export_kwargs: Any,
) -> None:
    """Writes a `.tflite` file that adapts to one episode and predicts its queries on a device.

    The file holds three signatures, each taking ONE episode (S and Q dynamic), as the
    SavedModel of `export_learner`:

    - `adapt(support_x, support_y) -> {"task_state": [P]}`: the learner's adaptation
      (prototypes, or the adapted head's weights);
    - `predict_adapted(task_state, query_x) -> {"logits": [Q, N]}` (or `"predictions"`);
    - `serving_default(support_x, support_y, query_x)`: both at once.

    Every op is one of LiteRT's builtins (the pip interpreter runs no Flex ops): ProtoNet,
    Meta-Baseline and cosine prototypes need nothing more; ANIL, MAML with `adapt_layers`
    on its output layer, Meta-SGD / MAML++ restricted to the head, Baseline and Baseline++
    adapt with the head's closed-form gradient
    (`tfmeta.learners.closed_form_head`), equal to the TensorFlow inner loop. Full-network
    MAML and Reptile need gradient ops and are refused. The file's tfmeta metadata
    (`litert_model.read_metadata`) tells the app the output key, the number of classes and
    whether every class needs a support example; `LiteRTLearner` runs it from Python.

    Text: LiteRT has no string ops, so a model that takes raw sentences (through
    `keras.layers.TextVectorization`) is exported on token ids `[S, L]` int32 (`-1` pads),
    with its vocabulary written beside the file (`model.vocabulary.txt` for
    `model.tflite`, one token a line, the id is the line number) and the tokenisation
    recipe in the metadata's `"tokens"`; see `tfmeta.export.token_ids`.

    Args:
        learner: a tfmeta learner (MAML and Reptile must be compiled).
        filepath: the `.tflite` file to write; it must not exist unless `overwrite=True`.
        quantization: None (float32), `"float16"` (weights stored in float16),
            `"dynamic_int8"` (int8 weights, float activations) or `"int8"` (int8 weights
            and activations, calibrated on `representative_episodes`; inputs and outputs
            stay float32 / int32).
        representative_episodes: for `"int8"`: episodes of the training split as the
            episode contract's `(inputs, query_y)` elements or input dicts (e.g.
            `tfmeta.data.omniglot(split="train", meta_batch_size=1)`), or a function
            returning them; the first task of each element is used.
        overwrite: whether to replace an existing file.
        representative_steps: how many representative episodes to calibrate on.
        **export_kwargs: `example_shape`, `support_y_spec` (see `export_learner`).

    Raises:
        ValueError: for an unknown `quantization`, `"int8"` without representative
            episodes, a learner that cannot adapt with builtin ops, a model whose
            conversion needs ops outside LiteRT's builtins, or a path in the way.

    Example:
    >>> import tfmeta
    >>> learner = tfmeta.ProtoNet(tfmeta.backbones.mlp((4,), (8,), 8))
    >>> export_litert(learner, "/tmp/tfmeta_protonet.tflite", overwrite=True)
    """
    _check_quantization(quantization, representative_episodes)
    filepath = os.fspath(filepath)
    _check_filepath(filepath, overwrite)
    spec = learner.serving_spec(example_shape=export_kwargs.get("example_shape"),
                                support_y_spec=export_kwargs.get("support_y_spec"))
    tokens, vocabulary = None, None
    if spec.examples.dtype == tf.string:
        # No string op is a builtin: the device model takes token ids (see token_ids).
        learner, vocabulary, vectorizer = token_id_learner(learner)
        tokens = {**vectorizer_description(vectorizer),
                  "vocabulary_file": os.path.basename(vocabulary_path(filepath))}
        export_kwargs.pop("example_shape", None)
    with tempfile.TemporaryDirectory(prefix="tfmeta-litert-") as folder:
        saved_model = os.path.join(folder, "saved_model")
        export_learner(learner, saved_model, builtin_ops=True, **export_kwargs)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_model, signature_keys=list(SIGNATURES))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        _configure_quantization(converter, quantization, representative_episodes,
                                representative_steps, saved_model)
        model = _convert(converter, learner)
        if quantization == "int8":
            model = _quantize_int8(model)
    description = {
        "format": 1,
        "output_key": spec.output_key,
        "classification": spec.classification,
        "ways": spec.ways,
        "every_class": spec.every_class,
        "quantization": quantization,
        "learner": type(learner).__name__,
        "tokens": tokens,
    }
    model = with_metadata(model, description)
    if vocabulary is not None:
        write_vocabulary(vocabulary_path(filepath), vocabulary)
    _write_atomically(model, filepath)


def _convert(converter: tf.lite.TFLiteConverter, learner: Any) -> bytes:
    """The converted model, or a one-line ValueError naming the ops LiteRT lacks."""
    try:
        return converter.convert()
    except Exception as error:  # The converter raises its own ConverterError.
        text = str(error)
        flex = re.search(r"TF Select ops: ([^\n]+)", text)
        if flex is None:
            raise
        raise ValueError(
            f"Cannot export {type(learner).__name__} to LiteRT with builtin ops only: the model "
            f"needs {flex.group(1).strip()}, which only TensorFlow's Flex (select TF ops) "
            "kernels run and the ai-edge-litert interpreter cannot; replace the layers that "
            "use them, or serve it in TensorFlow (learner.export())."
        ) from None


def _check_quantization(quantization, representative_episodes) -> None:
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"Invalid value for argument `quantization`: expected one of {QUANTIZATIONS}. "
            f"Received: quantization={quantization!r}")
    if quantization == "int8" and representative_episodes is None:
        raise ValueError(
            "Invalid value for argument `representative_episodes`: full int8 quantization "
            "calibrates the activations on episodes of the training split; pass them (e.g. "
            "tfmeta.data.omniglot(split='train', meta_batch_size=1)) or use "
            "quantization='dynamic_int8'. Received: representative_episodes=None")


def _configure_quantization(converter, quantization, episodes, steps, saved_model) -> None:
    if quantization is None:
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        adapt = tf.saved_model.load(saved_model).signatures["adapt"]
        converter.representative_dataset = lambda: _representative(episodes, steps, adapt)
        # Calibrate only: `_quantize_int8` chooses what is quantised.
        converter._experimental_calibrate_only = True


# Ops that full int8 quantises: the network's convolutions and pooling. Everything else
# (the episode arithmetic: prototypes and their counts, distances, softmax, the head's
# closed-form steps on fast weights, normalisations) stays float32: quantising it all
# collapsed a trained Omniglot ProtoNet to chance (20.0%) through the one-hot class counts.
INT8_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D")


def _quantize_int8(calibrated: bytes) -> bytes:
    """The calibrated model with `INT8_OPS` in int8 and every other op in float32."""
    from tensorflow.lite.python import convert

    denylisted = sorted(set(_op_names(calibrated)) - set(INT8_OPS))
    return convert.mlir_quantize(calibrated, fully_quantize=False, denylisted_ops=denylisted)


def _op_names(model: bytes) -> list[str]:
    """The builtin op names a `.tflite` flatbuffer uses, in every subgraph."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {code: name for name, code in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    root = schema.Model.GetRootAsModel(bytearray(model), 0)
    codes = [max(root.OperatorCodes(i).BuiltinCode(),
                 root.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(root.OperatorCodesLength())]
    return [names[code] for code in codes if code in names]


def _representative(episodes, steps: int, adapt: Callable):
    """Calibration inputs of every signature, from the first task of each episode.

    `predict_adapted` is calibrated on the task states that `adapt` (the SavedModel's,
    in float32) gives for the same support sets.
    """
    if callable(episodes):
        episodes = episodes()
    count = 0
    for element in episodes:
        inputs = element[0] if isinstance(element, (tuple, list)) else element
        support_x = np.asarray(inputs["support_x"])[0].astype(np.float32)
        support_y = np.asarray(inputs["support_y"])[0]
        support_y = support_y.astype(np.int32 if support_y.dtype.kind in "iu" else np.float32)
        query_x = np.asarray(inputs["query_x"])[0].astype(np.float32)
        yield "adapt", {"support_x": support_x, "support_y": support_y}
        yield "serving_default", {"support_x": support_x, "support_y": support_y,
                                  "query_x": query_x}
        task_state = adapt(support_x=tf.constant(support_x),
                           support_y=tf.constant(support_y))["task_state"].numpy()
        yield "predict_adapted", {"task_state": task_state, "query_x": query_x}
        count += 1
        if count >= steps:
            return


def _check_filepath(filepath: str, overwrite: bool) -> None:
    if not filepath.strip() or os.path.isdir(filepath):
        raise ValueError(
            "Invalid value for argument `filepath`: expected the path of a .tflite file. "
            f"Received: filepath={filepath!r}")
    if os.path.exists(filepath) and not overwrite:
        raise ValueError(
            "Invalid value for argument `filepath`: the file exists (pass overwrite=True to "
            f"replace it). Received: filepath={filepath!r}")


def _write_atomically(content: bytes, filepath: str) -> None:
    folder = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".tfmeta-litert-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, filepath)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
