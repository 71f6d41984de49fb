"""Flag parsing errors as one line, in-process (the scripts' own parser)."""

import pytest
from absl import flags

from tfmeta.cli import launcher, train


def parse(argv):
    flag_values = flags.FlagValues()
    train.define_flags(flag_values)
    return launcher._parse_flags("tfmeta-train", ["tfmeta-train", *argv], flag_values)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--flagfile=configs/missing.cfg", "--model_dir=x"], "configs/missing.cfg"),
        (["--model_dir=x", "--ways=five"], "--ways"),
        (["--model_dir=x", "--scheme=omniglot"], "--scheme"),
        ([], "--model_dir"),
    ],
)
def test_flag_errors_are_one_line_with_status_2(argv, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        parse(argv)
    assert info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-train: error: ") and error.count("\n") == 1
    assert fragment in error


def test_errors_as_one_line_keeps_other_exceptions():
    with pytest.raises(KeyError):
        with launcher.errors_as_one_line("tfmeta-train"):
            raise KeyError("a bug keeps its traceback")
