"""tfmeta: TensorFlow/Keras-native meta-learning.

Meta-train few-shot learners (MAML, first-order MAML, Reptile, Prototypical
Networks) with `model.fit` on `tf.data` episode pipelines, evaluate them with
confidence intervals, and export SavedModels that adapt inside the serving
graph.
"""

import os
import sys


def _quiet_tensorflow_start_up_for_commands() -> None:
    """Keeps TensorFlow's C++ start-up lines off stderr when running tfmeta's own commands.

    TensorFlow's libraries print several lines to stderr while they load,
    before any log level applies, so `tfmeta-train` and friends could not keep
    their errors to one line. For those commands alone (detected from the
    process' arguments), stderr is pointed at /dev/null while TensorFlow and
    Keras import (an import error still reaches stderr, raised after it is
    restored), and `TF_CPP_MIN_LOG_LEVEL` defaults to 3 for the rest of the run.
    """
    argv = getattr(sys, "orig_argv", None) or []
    if not any(os.path.basename(arg).startswith(("tfmeta-", "tfmeta.cli")) for arg in argv[1:3]):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(null)


_quiet_tensorflow_start_up_for_commands()

from tfmeta import (  # noqa: E402
    backbones,
    baselines,
    callbacks,
    data,
    distribute,
    export,
    layers,
    metrics,
)
from tfmeta.learners import (  # noqa: E402
    MAML,
    Baseline,
    GradientLearner,
    MetaLearner,
    ProtoNet,
    Reptile,
    TestTimeAdaptation,
)

__version__ = "0.1.0"

__all__ = [
    "MAML",
    "Baseline",
    "GradientLearner",
    "MetaLearner",
    "ProtoNet",
    "Reptile",
    "TestTimeAdaptation",
    "__version__",
    "backbones",
    "baselines",
    "callbacks",
    "data",
    "distribute",
    "export",
    "layers",
    "metrics",
]
