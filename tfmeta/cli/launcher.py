"""Starting a command: absl flags with one-line errors and a useful `--help`."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator, Sequence

from absl import app, flags, logging

from tfmeta.distribute.cpu_threads import CPU_THREAD_CHOICES

DefineFlags = Callable[[flags.FlagValues], Sequence[flags.FlagHolder]]


def launch(program: str, doc: str | None, define_flags: DefineFlags,
           main: Callable[[list[str]], None]) -> None:
    """Defines a command's flags on `absl.flags.FLAGS` and runs `main` with `absl.app.run`.

    Compared with a bare `app.run(main)`:
    - `--help` lists the command's flags and its module docstring also when it
      runs as a console script (whose `__main__` is a generated wrapper);
    - a flag error (unknown flag, missing `--flagfile`, bad value) is one line
      on stderr, `<program>: error: ...`, and exit status 2.

    Args:
        program: The command's name, e.g. "tfmeta-train".
        doc: The usage text `--help` prints (the command module's docstring).
        define_flags: Defines the command's flags on the `FlagValues` it is given
            and returns their holders.
        main: The command's main function, called with the remaining arguments.

    """
    holders = define_flags(flags.FLAGS)
    for holder in holders:
        # --help shows the key flags of the main module, which absl names by sys.argv[0].
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[holder.name])
    main_module = sys.modules.get("__main__")
    if doc and main_module is not None and not main_module.__doc__:
        main_module.__doc__ = doc
    app.run(functools.partial(_quiet_main, main),
            flags_parser=functools.partial(_parse_flags, program))


def _quiet_main(main: Callable[[list[str]], None], argv: list[str]) -> None:
    # absl.app logs at INFO by default, which floods the output with TensorFlow's
    # SavedModel notes; --verbosity still chooses.
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    main(argv)


def _parse_flags(program: str, argv: list[str],
                 flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
    try:
        return flag_values(argv)
    except flags.Error as error:
        fail(program, f"{error} (see --help)", status=2)


def fail(program: str, message: str, status: int = 1) -> None:
    """Writes `<program>: error: <message>` as one line on stderr and exits with `status`."""
    line = " ".join(str(message).split())
    sys.stderr.write(f"{program}: error: {line}\n")
    sys.stderr.flush()
    sys.exit(status)


@contextlib.contextmanager
def errors_as_one_line(program: str) -> Iterator[None]:
    """Turns the errors of bad input or a failed run into `fail(program, message)`.

    `ValueError` (flags, data), `OSError` (missing, unreadable or unwritable
    files and folders, a full disk), `ImportError` (an optional package missing or
    at another version, e.g. the Meta-World simulator) and `FloatingPointError` (a
    diverged run) become one line and exit status 1; anything else is a bug and keeps its
    traceback.

    Example:
    >>> with errors_as_one_line("tfmeta-demo"):  # doctest: +SKIP
    ...     raise ValueError("Invalid value for flag `--ways`")

    """
    try:
        yield
    except (ValueError, OSError, ImportError, FloatingPointError) as error:
        fail(program, _describe(error))


def _describe(error: BaseException) -> str:
    message = str(error) or type(error).__name__
    if isinstance(error, OSError) and not isinstance(error, FileNotFoundError):
        # e.g. "[Errno 28] No space left on device: 'runs/x/learner.keras'"
        message = f"{type(error).__name__}: {message}"
    return message


def define_cpu_threads_flag(flag_values: flags.FlagValues) -> flags.FlagHolder:
    """Defines `--cpu_threads` (see `tfmeta.distribute.cpu_threads.cpu_threads_for`)."""
    return flags.DEFINE_enum(
        "cpu_threads", "auto", CPU_THREAD_CHOICES,
        "CPU threads: task_parallel runs each op on one thread and the meta-batch's tasks in "
        "parallel (MAML, FOMAML and Reptile: 1.3-1.5x faster on 2 cores); tensorflow keeps "
        "TensorFlow's defaults (each op on every core); auto picks task_parallel for those "
        "learners when no GPU is visible, the meta-batch has at least as many tasks as there "
        "are cores, and TF_NUM_INTRAOP_THREADS is not set.",
        flag_values=flag_values)
