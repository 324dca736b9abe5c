"""End-to-end: the commands a user types, as subprocesses."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_train_prints_one_line_per_epoch_and_a_final_accuracy():
    result = run(
        "-m",
        "hpsearch.cli",
        "train",
        "--data",
        "digits",
        "--hidden",
        "64x2",
        "--epochs",
        "5",
        "--lr",
        "0.1",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    epoch_lines = [line for line in lines if line.split() and line.split()[0].isdigit()]
    assert [int(line.split()[0]) for line in epoch_lines] == [1, 2, 3, 4, 5]
    final = float(lines[-1].split()[3])
    assert final > 0.8  # 10 classes: chance is 0.1


def test_run_study_script_trains_the_default_network():
    result = run("scripts/run_study.py", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert "Split('mnist-5k': 3200 train, 800 validation, 1000 test" in result.stdout
    assert "784-100-100-100-100-100-100-10" in result.stdout
    assert float(result.stdout.splitlines()[-1].split()[3]) > 0.5


def test_bad_input_gives_one_line_and_exit_code_2():
    for args, message in [
        (["--data", "cifar-10"], "unknown data set 'cifar-10'"),
        (["--validation-fraction", "2"], "validation_fraction"),
        (["--train-size", "99999"], "train_size=99999"),
        (["--data", "idx:/nonexistent"], "does not exist"),
        (["--epochs", "0"], "epochs must be a positive integer"),
    ]:
        result = run("-m", "hpsearch.cli", "train", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_usage_errors_exit_2_without_traceback():
    result = run("-m", "hpsearch.cli", "train", "--hidden", "abc")
    assert result.returncode == 2 and "hidden sizes" in result.stderr
    assert "Traceback" not in result.stderr
