"""The console scripts as real processes: --help, one-line errors, resuming after a kill."""

import csv
import re
import signal
import subprocess
import sys
import time

from cli_helpers import CONFIGS, REPO, assert_one_line_error, command_lines, run_script


def test_help_describes_the_command_and_its_flags():
    result = run_script("tfmeta-train", ["--help"])
    assert "Meta-trains a few-shot learner" in result.stdout
    for flag in ("--model_dir", "--learner", "--test_ways", "--lr_decay", "--hidden_units"):
        assert flag in result.stdout
    assert "Traceback" not in result.stderr


def test_an_unknown_flag_is_one_line_on_stderr():
    result = run_script("tfmeta-train", ["--model_dir=x", "--bogus_flag=1"])
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "tfmeta-train", "Unknown command line flag 'bogus_flag'")


def test_an_unknown_cpu_threads_choice_is_one_line_on_stderr():
    for program in ("tfmeta-train", "tfmeta-evaluate"):
        result = run_script(program, ["--model_dir=x", "--cpu_threads=fast"])
        assert result.returncode == 2
        assert_one_line_error(result.stderr, program, "--cpu_threads", "task_parallel")


def test_training_killed_after_a_backup_resumes_and_finishes(tmp_path):
    model_dir = tmp_path / "run"
    argv = [
        "-m", "tfmeta.cli.train", f"--flagfile={CONFIGS / 'sinusoid_maml.cfg'}",
        f"--model_dir={model_dir}", "--meta_batch_size=2", "--steps_per_epoch=10",
        "--train_steps=400", "--eval_inner_steps=2", "--verbose=2",
    ]
    process = subprocess.Popen([sys.executable, *argv], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    metadata = model_dir / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 180
    try:
        while not metadata.exists() and process.poll() is None:
            assert time.monotonic() < deadline, "no backup was written"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not (model_dir / "learner.keras").exists(), "the run finished before the kill"

    resumed = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True,
                             timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    match = re.search(r"Resuming from epoch (\d+)/40 \(step (\d+)\)", resumed.stdout)
    assert match and int(match.group(1)) >= 1, resumed.stdout
    assert "Epoch 1/40" not in resumed.stdout
    resumed_at = int(match.group(1))
    with open(model_dir / "history.csv") as file:
        epochs = [int(row["epoch"]) for row in csv.DictReader(file)]
    assert epochs[-(40 - resumed_at):] == list(range(resumed_at, 40))
    assert (model_dir / "learner.keras").exists()

    evaluated = run_script("tfmeta-evaluate", [f"--model_dir={model_dir}", "--episodes=40"])
    assert evaluated.returncode == 0, evaluated.stderr
    assert re.fullmatch(r"mse: \d+\.\d{4} ± \d+\.\d{4} \(95% CI, 40 episodes, 10-shot\)\n",
                        evaluated.stdout)
    assert command_lines(evaluated.stderr) == []
