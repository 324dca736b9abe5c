"""End-to-end: the commands a user types, as subprocesses."""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from hpsearch.cli import build_parser, main
from tests.support import TINY, dump

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600
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


def test_run_study_script_runs_a_study_and_says_where_it_is(tmp_path):
    db = tmp_path / "cli.db"
    result = run(
        "scripts/run_study.py",
        "--trials",
        "6",
        "--epochs",
        "2",
        "--storage",
        f"sqlite:///{db}",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"best [1-6] of [1-6] completed trials", out), out
    assert f"database: {db}" in out
    assert f"dashboard --storage sqlite:///{db}" in out
    study = optuna.load_study(study_name="mnist-lr-wd-init", storage=f"sqlite:///{db}")
    assert len(study.trials) == 6


def test_the_dashboard_hint_runs_as_printed(tmp_path):
    """The `dashboard:` line `scripts/run_study.py` ends with is a command that runs where
    it was printed: its program exists and is executable, its arguments are the dashboard
    subcommand's, its --storage URL opens the database the run wrote, and run as it is
    (with the port taken, so that no server starts) it opens that database and gets as
    far as serving it."""
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY.format(n_trials=2, sampler="random", pruner="none"))
    db = tmp_path / "hint.db"
    result = run(
        "scripts/run_study.py", str(spec), "--storage", f"sqlite:///{db}",
        "--epochs", "1", "--workers", "1", "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    hints = [line for line in result.stdout.splitlines() if line.startswith("dashboard: ")]
    assert len(hints) == 1, result.stdout
    argv = shlex.split(hints[0].removeprefix("dashboard: "))
    # A path is read from the folder the script ran in; a bare name is looked up on PATH.
    program = ROOT / argv[0] if os.sep in argv[0] else shutil.which(argv[0])
    assert program is not None and Path(program).is_file(), argv[0]
    assert os.access(program, os.X_OK), program

    args = build_parser().parse_args(argv[1:])
    assert args.command == "dashboard" and args.storage is not None, argv
    # The run's own database file (checked first: optuna would create a missing one).
    assert (ROOT / make_url(args.storage).database).resolve() == db.resolve(), args.storage
    study = optuna.load_study(study_name="tiny", storage=args.storage)
    assert len(study.get_trials(states=[TrialState.COMPLETE])) == 2

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served = subprocess.run(
            [*argv, "--port", str(port)], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
    assert f"optuna-dashboard for {db} at http://127.0.0.1:{port}/" in served.stdout, served
    assert served.returncode == 2, served
    assert f"cannot serve on 127.0.0.1:{port}" in served.stderr, served


def test_median_pruning_trains_fewer_epochs_than_no_pruner(tmp_path):
    """The default spec on 1,000 examples for 6 epochs, 30 trials each way: pruned trials
    exist and cost less."""
    totals = {}
    for pruner in ("median", "none"):
        spec = tmp_path / f"{pruner}.toml"
        text = (ROOT / "studies" / "mnist_lr_wd_init.toml").read_text()
        text = re.sub(r'(?m)^pruner = "[^"]*"', f'pruner = "{pruner}"', text)
        text = text.replace("[data]\n", "[data]\ntrain_size = 1000\n", 1)
        text = re.sub(r"(?m)^epochs = \d+", "epochs = 6", text)
        assert "train_size = 1000" in text and "epochs = 6" in text
        spec.write_text(text)
        storage = f"sqlite:///{tmp_path / pruner}.db"
        assert (
            main(
                [
                    "run",
                    str(spec),
                    "--trials",
                    "30",
                    "--storage",
                    storage,
                    "--workers",
                    "1",
                    "--no-progress",
                ]
            )
            == 0
        )
        trials = optuna.load_study(study_name="mnist-lr-wd-init", storage=storage).trials
        totals[pruner] = sum(t.user_attrs["epochs_run"] for t in trials)
        # Without a pruner only diverged trials stop early.
        pruned = [
            t for t in trials if not t.user_attrs.get("diverged") and t.state == TrialState.PRUNED
        ]
        assert bool(pruned) == (pruner == "median")
    print(
        f"epochs trained over 30 trials: median pruner {totals['median']}, "
        f"no pruner {totals['none']}"
    )
    assert totals["median"] < 0.8 * totals["none"]


def write_tiny(tmp_path: Path, **fields) -> Path:
    values = {"n_trials": 4, "sampler": "tpe", "pruner": "none"} | fields
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(**values))
    return path


BAD_SPECS = {
    "unknown key": ("[model]\nhiden_sizes = [10]\n", "model.hiden_sizes: unknown key"),
    "inverted range": (
        "[search.params.lr]\nlow = 1.0\nhigh = 0.001\nlog = true\n",
        "inverted range",
    ),
    "empty range": ("[search.params.lr]\nlow = 0.1\nhigh = 0.1\n", "empty range"),
    "log low <= 0": ("[search.params.lr]\nlow = 0\nhigh = 1\nlog = true\n", "search.params.lr.low"),
    "unknown sampler": ("[search]\nsampler = 'bayes'\n", "unknown sampler 'bayes'"),
    "unknown pruner": ("[search]\npruner = 'early'\n", "unknown pruner 'early'"),
    "unknown optimizer": ("[training]\noptimizer = 'lbfgs'\n", "unknown optimizer 'lbfgs'"),
    "unknown data set": ("[data]\nname = 'cifar-10'\n", "unknown data set 'cifar-10'"),
    "unparsable TOML": ("[search\n", "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_specs_exit_2_with_one_line_and_leave_the_database_alone(tmp_path, capsys, case):
    text, message = BAD_SPECS[case]
    db = tmp_path / "existing.db"
    storage = f"sqlite:///{db}"
    assert main(["run", str(write_tiny(tmp_path)), "--storage", storage, "--no-progress"]) == 0
    before = dump(db)
    capsys.readouterr()
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    assert main(["run", str(bad), "--storage", storage, "--study", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(bad) in err, err
    assert dump(db) == before


def test_a_changed_search_space_under_an_existing_name_is_refused(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'existing.db'}"
    spec = write_tiny(tmp_path)
    assert main(["run", str(spec), "--storage", storage, "--no-progress"]) == 0
    before = dump(tmp_path / "existing.db")
    spec.write_text(spec.read_text().replace("low = 1e-3\nhigh = 1.0", "low = 1e-4\nhigh = 1.0"))
    capsys.readouterr()
    assert main(["run", str(spec), "--storage", storage]) == 2
    err = capsys.readouterr().err
    assert "different experiment (params.lr.low: 0.001 there, 0.0001 here)" in err
    assert "--study NEW_NAME" in err and err.count("\n") == 1
    assert dump(tmp_path / "existing.db") == before


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ("sqlite:////proc/hpsearch/x.db", "cannot create the database"),
        ("sqlite:///{tmp}/file.txt/x.db", "cannot create the database"),
        ("sqlite:///{tmp}/notes.txt", "is not an SQLite database"),
        ("not a url", "is not a database URL"),
    ],
)
def test_unusable_storage_gives_one_line(tmp_path, capsys, storage, message):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    (tmp_path / "notes.txt").write_text("some notes that must survive\n")
    result = main(
        [
            "run",
            str(write_tiny(tmp_path)),
            "--storage",
            storage.format(tmp=tmp_path),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert result == 2 and message in err and err.count("\n") == 1, err
    assert (tmp_path / "notes.txt").read_text() == "some notes that must survive\n"


def test_bad_input_gives_one_line_and_exit_code_2_without_traceback(tmp_path, capsys, monkeypatch):
    """In this process (an escaping exception fails the test as a traceback would);
    `test_usage_errors_exit_2_without_traceback` runs the real command."""
    monkeypatch.chdir(ROOT)  # `run` without a spec reads the default one
    for args, message in [
        (["train", "--data", "cifar-10"], "unknown data set 'cifar-10'"),
        (["train", "--validation-fraction", "2"], "validation_fraction"),
        (["train", "--train-size", "99999"], "train_size=99999"),
        (["train", "--epochs", "0"], "epochs must be a positive integer"),
        (["run", str(tmp_path / "missing.toml")], "no such spec file"),
        (["run", "--trials", "0"], "search.n_trials: must be >= 1"),
        (
            ["final", "--study", "nope", "--storage", f"sqlite:///{tmp_path}/x.db"],
            "no study named 'nope'",
        ),
    ]:
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert err.count("\n") == 1 and message in err, err


def test_usage_errors_exit_2_without_traceback():
    result = run("-m", "hpsearch.cli", "train", "--hidden", "abc")
    assert result.returncode == 2 and "hidden sizes" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_imports_plotting_and_tables_only_for_the_subcommands_that_use_them():
    # Every `hpsearch` process (each worker of a cluster) pays for what its parser imports.
    probe = (
        "import sys\n"
        "from hpsearch.cli import build_parser\n"
        "build_parser()\n"
        # what `run` and `worker` import before their trials (narrowing is for round 2 on)
        "import hpsearch.search.rounds, hpsearch.search.distributed\n"
        "print(sorted(m for m in ('matplotlib', 'pandas', 'sklearn', 'scipy') if m in sys.modules))"
    )
    result = run("-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("workers", [1, 2])
def test_sigint_keeps_finished_trials_and_the_next_run_continues(tmp_path, workers):
    storage = f"sqlite:///{tmp_path / 'interrupted.db'}"
    spec = write_tiny(tmp_path, n_trials=400)
    command = [
        sys.executable,
        "-m",
        "hpsearch.cli",
        "run",
        str(spec),
        "--storage",
        storage,
        "--no-progress",
        "--workers",
        str(workers),
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    completed = []
    # Completed ones only: init health may prune a trial, and the count below is of
    # completed trials.
    while time.time() < deadline and len(completed) < 5:
        time.sleep(0.3)
        try:
            study = optuna.load_study(study_name="tiny", storage=storage)
            completed = study.get_trials(states=(TrialState.COMPLETE,))
        except (KeyError, SQLAlchemyError):  # not made yet, or this look raced its making
            continue
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    done = {t.number: (t.params, t.value) for t in trials if t.state == TrialState.COMPLETE}
    assert len(done) >= 5
    assert len(done) < 400

    # The same command, with a smaller total so the test is quick, continues the study.
    wanted = len(trials) + 3
    result = subprocess.run(
        [*command, "--trials", str(wanted)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    after = optuna.load_study(study_name="tiny", storage=storage).trials
    kept = {t.number: (t.params, t.value) for t in after if t.number in done}
    assert kept == done
    assert len([t for t in after if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) == wanted
    assert os.path.exists(tmp_path / "interrupted.db")
