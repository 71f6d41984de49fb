"""A `.tflite` learner in the LiteRT interpreter, with its inputs checked in one line."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

# The name of the `.tflite` metadata entry that describes a tfmeta export (JSON).
METADATA_NAME = "tfmeta"
SIGNATURES = ("serving_default", "adapt", "predict_adapted")


def vocabulary_path(filepath: str | os.PathLike) -> str:
    """The vocabulary file beside a text model's `.tflite`: `x.tflite` -> `x.vocabulary.txt`."""
    stem, extension = os.path.splitext(os.fspath(filepath))
    return (stem if extension == ".tflite" else os.fspath(filepath)) + ".vocabulary.txt"


def read_metadata(model: bytes) -> dict[str, Any]:
    """The tfmeta description stored in a `.tflite` flatbuffer (`{}` when there is none)."""
    from tensorflow.lite.python import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(bytearray(model), 0)
    for index in range(root.MetadataLength()):
        entry = root.Metadata(index)
        if entry.Name() == METADATA_NAME.encode():
            return json.loads(bytes(root.Buffers(entry.Buffer()).DataAsNumpy()).decode())
    return {}


def with_metadata(model: bytes, description: dict[str, Any]) -> bytes:
    """`model` with `description` stored as its tfmeta metadata entry (JSON)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.python import util

    root = util._convert_model_from_bytearray_to_object(model)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(description, sort_keys=True).encode(), np.uint8)
    root.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME.encode()
    entry.buffer = len(root.buffers) - 1
    root.metadata = [m for m in (root.metadata or []) if m.name != entry.name] + [entry]
    return bytes(util._convert_model_from_object_to_bytearray(root))


class LiteRTLearner:
    """A learner exported by `export_litert`, run by the LiteRT interpreter (`ai-edge-litert`).

    The `.tflite` file's signatures are what an app on a phone calls; this class calls
    them from Python with the checks the graph cannot make (LiteRT drops TensorFlow's
    assertions, so a bad episode would give NaN or garbage there): each input's dtype and
    shape against the signature, non-empty sets, labels in `0..N-1` and, for prototype
    learners, a support example of every class. Each failure is one `ValueError` line.
    Floats of another width are cast to the signature's float32, integers to its int32; a
    text model's `support_x` / `query_x` may be lists of sentences (tokenised with the
    vocabulary file beside the model, see `tfmeta.export.token_ids`) or token ids.

    Args:
        path: a `.tflite` file written by `tfmeta.export.export_litert`.
        num_threads: interpreter threads (None: LiteRT's default).

    Example:
    >>> import numpy as np, tfmeta
    >>> learner = tfmeta.ProtoNet(tfmeta.backbones.mlp((4,), (8,), 8))
    >>> learner.export_litert("/tmp/tfmeta_litert_example.tflite", overwrite=True)
    >>> device = LiteRTLearner("/tmp/tfmeta_litert_example.tflite")
    >>> state = device.adapt(np.zeros([2, 4], "float32"), np.array([0, 1], "int32"))
    >>> device.predict_adapted(state, np.ones([3, 4], "float32")).shape
    (3, 2)
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ValueError(
                f"Invalid value for argument `path`: expected a .tflite file. Received: "
                f"path={path!r}, which does not exist")
        with open(path, "rb") as file:
            content = file.read()
        self.path = path
        self.description = read_metadata(content)
        self._interpreter = Interpreter(model_content=content, num_threads=num_threads)
        self._runners = {}
        missing = [key for key in SIGNATURES if key not in self.signatures]
        if missing or not self.description:
            raise ValueError(
                f"Invalid value for argument `path`: {path!r} is not a tfmeta LiteRT export "
                f"(signatures {sorted(self.signatures)}, no {missing or 'tfmeta metadata'})")
        self.vocabulary = None
        if self.tokens is not None:
            from tfmeta.export.token_ids import read_vocabulary

            self.vocabulary = read_vocabulary(
                os.path.join(os.path.dirname(path), self.tokens["vocabulary_file"]))

    @property
    def signatures(self) -> dict[str, dict[str, list[str]]]:
        """The `.tflite` file's signatures: name -> `{"inputs": [...], "outputs": [...]}`."""
        return self._interpreter.get_signature_list()

    @property
    def tokens(self) -> dict[str, Any] | None:
        """How a text model's sentences become token ids (None for other models)."""
        return self.description.get("tokens")

    @property
    def output_key(self) -> str:
        """`"logits"` (classification) or `"predictions"` (regression)."""
        return self.description["output_key"]

    def adapt(self, support_x, support_y) -> np.ndarray:
        """The task's state `[P]` float32 from one support set (`support_x [S, ...]`)."""
        support_x, support_y = self._checked_support(support_x, support_y)
        return self._run("adapt", support_x=support_x, support_y=support_y)["task_state"]

    def predict_adapted(self, task_state, query_x) -> np.ndarray:
        """The query outputs `[Q, ...]` of a task adapted by `adapt`."""
        task_state = self._checked("predict_adapted", "task_state", task_state)
        query_x = self._checked("predict_adapted", "query_x", query_x)
        _check_not_empty("query_x", query_x)
        return self._run("predict_adapted", task_state=task_state,
                         query_x=query_x)[self.output_key]

    def __call__(self, support_x, support_y, query_x) -> np.ndarray:
        """`serving_default`: adapts to the support set and predicts the queries at once."""
        support_x, support_y = self._checked_support(support_x, support_y, "serving_default")
        query_x = self._checked("serving_default", "query_x", query_x)
        _check_not_empty("query_x", query_x)
        return self._run("serving_default", support_x=support_x, support_y=support_y,
                         query_x=query_x)[self.output_key]

    # === Checks ===

    def _checked_support(self, support_x, support_y, signature="adapt"):
        support_x = self._checked(signature, "support_x", support_x)
        support_y = self._checked(signature, "support_y", support_y)
        _check_not_empty("support_x", support_x)
        if len(support_y) != len(support_x):
            raise ValueError(
                "Invalid episode: `support_x` and `support_y` must hold the same number of "
                f"support examples. Received: {len(support_x)} and {len(support_y)}")
        if self.description.get("classification"):
            self._check_labels(support_y)
        return support_x, support_y

    def _check_labels(self, labels: np.ndarray) -> None:
        ways = self.description.get("ways")
        high = ways if ways is not None else int(labels.max()) + 1
        if labels.min() < 0 or labels.max() >= high:
            expected = f"0..{ways - 1}" if ways is not None else "0..N-1"
            raise ValueError(
                f"Invalid episode: `support_y` labels must be in {expected} (remapped per "
                f"episode). Received: labels from {labels.min()} to {labels.max()}")
        if self.description.get("every_class"):
            missing = sorted(set(range(high)) - set(labels.tolist()))
            if missing:
                raise ValueError(
                    "Invalid episode: every class 0..N-1 needs a support example (prototypes). "
                    f"Received: no example of class {missing[:5]}")

    def _checked(self, signature: str, name: str, value: Any) -> np.ndarray:
        """`value` as the array the signature's input `name` takes, or a one-line error."""
        detail = self._runner(signature).get_input_details()[name]
        dtype, expected = np.dtype(detail["dtype"]), detail["shape_signature"]
        array = np.asarray(value)
        if self.tokens is not None and name in ("support_x", "query_x") and (
                array.dtype.kind in "USO"):
            from tfmeta.export.token_ids import tokenize

            if array.ndim != 1:
                raise ValueError(f"Invalid value for `{name}`: expected a list of sentences. "
                                 f"Received: {name}.shape={list(array.shape)}")
            array = tokenize([str(s) for s in array], self.tokens, self.vocabulary)
        if array.dtype != dtype and not (
                np.issubdtype(array.dtype, np.integer) and np.issubdtype(dtype, np.integer)
                or np.issubdtype(array.dtype, np.floating) and np.issubdtype(dtype, np.floating)):
            raise ValueError(
                f"Invalid value for `{name}` of `{signature}`: expected dtype {dtype.name}. "
                f"Received: {name}.dtype={array.dtype.name}")
        if array.ndim != len(expected) or any(
                want != -1 and got != want for got, want in zip(array.shape, expected)):
            wanted = [None if d == -1 else int(d) for d in expected]
            raise ValueError(
                f"Invalid value for `{name}` of `{signature}`: expected shape {wanted} (None: "
                f"any size). Received: {name}.shape={list(array.shape)}")
        if np.issubdtype(dtype, np.integer) and array.dtype != dtype:
            if array.size and (array.min() < np.iinfo(dtype).min
                               or array.max() > np.iinfo(dtype).max):
                raise ValueError(f"Invalid value for `{name}`: values do not fit {dtype.name}.")
        return np.ascontiguousarray(array, dtype=dtype)

    def _runner(self, signature: str):
        if signature not in self._runners:
            self._runners[signature] = self._interpreter.get_signature_runner(signature)
        return self._runners[signature]

    def _run(self, signature: str, **inputs) -> dict[str, np.ndarray]:
        return self._runner(signature)(**inputs)


def _check_not_empty(name: str, array: np.ndarray) -> None:
    if array.shape[0] == 0:
        raise ValueError(f"Invalid episode: `{name}` is empty. Received: {name}.shape="
                         f"{list(array.shape)}")
