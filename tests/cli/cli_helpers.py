"""Helpers for the CLI tests: commands in-process with their own flags, or as scripts."""

import os
import re
import subprocess
import sys
from pathlib import Path

from absl import flags

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"

# TensorFlow's native logging writes a few lines at import time, whatever
# TF_CPP_MIN_LOG_LEVEL says; they are not the command's output.
_NATIVE_LOG = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl::InitializeLog)")


def run_in_process(module, argv):
    """Parses `argv` with a fresh FlagValues holding `module`'s flags, then calls its main."""
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    remaining = flag_values([module.PROGRAM, *argv])
    module.main(remaining, flag_values=flag_values)


def run_script(name, argv, env=None, timeout=240):
    """Runs a console script (or `python -m` its module) and returns the CompletedProcess."""
    script = Path(sys.executable).with_name(name)
    module = "tfmeta.cli." + name.removeprefix("tfmeta-")
    command = [str(script)] if script.exists() else [sys.executable, "-m", module]
    return subprocess.run(
        [*command, *argv], capture_output=True, text=True, timeout=timeout, cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
    )


def command_lines(stderr):
    """The lines of stderr that the command wrote (TensorFlow's native log lines removed)."""
    return [line for line in stderr.splitlines() if line.strip() and not _NATIVE_LOG.match(line)]


def assert_one_line_error(stderr, program, *fragments):
    lines = command_lines(stderr)
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"{program}: error: "), lines[0]
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
