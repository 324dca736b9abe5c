"""A user's own training function as the objective (`[model] kind = "python"`): it runs
through every way hpsearch runs trials, its reports prune, `final` gives a test score,
and a worker imports it only from its environment or its --code folders."""

import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.cli import main
from hpsearch.trials.entry import EntryError, load_entry, trusted

# Softmax regression on the spec's data, trained by SGD; reports validation accuracy and
# the training loss after every epoch. A learning rate near 1e-4 learns almost nothing in
# a few epochs, so the median pruner has clear losers to stop.
USER_CODE = """
import numpy as np


def objective(config, report, data, rng):
    w = rng.normal(0.0, 0.01, (data.input_size, data.n_classes))
    for epoch in range(1, config.epochs + 1):
        losses = []
        for idx in np.array_split(rng.permutation(len(data.t_train)), 10):
            x, t = data.x_train[idx], data.t_train[idx]
            z = x @ w
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            losses.append(float(-np.mean(np.log(p[np.arange(len(t)), t] + 1e-9))))
            p[np.arange(len(t)), t] -= 1.0
            w -= config["lr"] * (x.T @ p / len(t) + config["weight_decay"] * w)
        accuracy = float(np.mean((data.x_val @ w).argmax(axis=1) == data.t_val))
        report(epoch, accuracy, train_loss=float(np.mean(losses)))
    return accuracy
"""

SPEC = """name = "{name}"
seed = 1
[data]
name = "digits"
[model]
kind = "python"
entry = "{module}:objective"
settings = {{ lr = 0.5 }}
[training]
epochs = 4
[search]
n_trials = {n_trials}
sampler = "random"
pruner = "median"
pruner_options = {{ n_startup_trials = 3, n_warmup_steps = 0 }}
[search.params.lr]
low = 1e-4
high = 3.0
log = true
[search.params.weight_decay]
low = 1e-8
high = 1e-2
log = true
"""


def user_project(tmp_path: Path, module: str, n_trials: int = 12, code: str = USER_CODE) -> Path:
    """A folder with the user's module and a spec next to it; the spec's path."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / f"{module}.py").write_text(code)
    spec = folder / "study.toml"
    spec.write_text(SPEC.format(name=module, module=module, n_trials=n_trials))
    return spec


def module_name(request) -> str:
    """A module name of this test's own: one process imports each name once."""
    return "user_" + re.sub(r"\W", "_", request.node.name)


def trials(db: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=db).get_trials(deepcopy=False)


def test_a_users_function_runs_with_two_workers_prunes_narrows_and_finals(
    tmp_path, capsys, request
):
    module = module_name(request)
    spec = user_project(tmp_path, module, n_trials=16)
    db = f"sqlite:///{tmp_path / 'u.db'}"
    args = ["run", str(spec), "--storage", db, "--workers", "2", "--rounds", "2", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best validation score" in out and f"{module}-r2" in out
    done = trials(db, module)
    states = [t.state for t in done]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 16
    pruned = [t for t in done if t.state == TrialState.PRUNED]
    assert pruned, "the function's reports pruned nothing"
    assert all(len(t.user_attrs["val_score"]) < 4 for t in pruned)
    assert all(t.user_attrs["stop_reason"].startswith("pruned after epoch") for t in pruned)
    complete = [t for t in done if t.state == TrialState.COMPLETE]
    assert all(len(t.user_attrs["train_loss"]) == 4 for t in complete)
    assert all(t.user_attrs["val_score"][-1] == t.value for t in complete)
    # The first trial is the spec's own setting of a searched name: lr = 0.5.
    assert done[0].params["lr"] == 0.5
    round_two = trials(db, f"{module}-r2")
    assert any(t.user_attrs.get("copied_from") for t in round_two)
    assert main(["final", "--study", module, "--storage", db, "--code", str(spec.parent)]) == 0
    out = capsys.readouterr().out
    score = float(out.split("test score ")[1].split()[0])
    assert score > 0.5  # ten digits: chance is 0.1
    final = optuna.load_study(study_name=module, storage=db).user_attrs["final"]
    assert round(final["test_score"], 4) == score and len(final["reported"]) == 4
    out = tmp_path / "report"
    assert main(["report", "--study", module, "--storage", db, "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert (
        "Best validation score" in text
        and f"Test score of the best configuration (`hpsearch final`): {score}" in text
    )


def hpsearch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m hpsearch.cli ...`: Python puts the working directory on sys.path first."""
    env = os.environ | {"PYTHONPATH": ""}
    return subprocess.run(
        [sys.executable, "-m", "hpsearch.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# Each worker process's first trial waits (up to a minute) until two processes have
# arrived, so that both workers are seen to run trials of the study however fast
# the first one starts: a wait on an event with a deadline, in the user's code.
MEET = """
import os
import time
from pathlib import Path

ARRIVALS = Path({folder!r})


def meet():
    ARRIVALS.joinpath(str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(list(ARRIVALS.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
"""


def test_submit_and_two_workers_run_a_users_function_given_with_code(tmp_path, capsys, request):
    module = module_name(request)
    arrivals = tmp_path / "arrivals"
    arrivals.mkdir()
    code = MEET.format(folder=str(arrivals)) + USER_CODE.replace(
        "    w = rng.normal", "    meet()\n    w = rng.normal"
    )
    spec = user_project(tmp_path, module, code=code)
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    assert main(["submit", str(spec), "--storage", db]) == 0
    assert "--code DIR" in capsys.readouterr().out
    command = [sys.executable, "-m", "hpsearch.cli", "worker", "--storage", db]
    workers = [
        subprocess.Popen(
            [*command, "--code", str(spec.parent), "--no-progress"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    done = trials(db, module)
    finished = [t for t in done if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 12
    assert len({t.user_attrs["worker"] for t in finished}) == 2
    assert any(t.state == TrialState.PRUNED for t in finished)


def test_a_worker_refuses_an_entry_outside_its_environment_and_code_folders(tmp_path, request):
    """The spec in the shared database names a module that only the working directory
    has: the worker says so in one line, exits 2 and runs no trial."""
    module = module_name(request)
    spec = user_project(tmp_path, module)
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    assert main(["submit", str(spec), "--storage", db]) == 0
    hints = {
        spec.parent: f"'{module}' is in the working directory, which is not trusted",
        tmp_path: "a worker needs --code DIR for a module that is not installed",
    }
    for cwd, hint in hints.items():  # the module in the working directory, or nowhere
        refused = hpsearch("worker", "--storage", db, "--no-progress", cwd=cwd)
        assert refused.returncode == 2
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
        assert f"model.entry '{module}:objective': no module '{module}'" in refused.stderr
        assert hint in refused.stderr
    # Only the queued start points (lr = 0.5 from the settings, and 0.05), never run.
    assert {t.state for t in trials(db, module)} == {TrialState.WAITING}


BROKEN = {
    "raises": (
        "def objective(config, report, data, rng):\n    raise ValueError('bad shape')\n",
        "trial 0: {m}:objective raised ValueError: bad shape at ",
    ),
    "wrong signature": (
        "def objective(config):\n    return 1.0\n",
        "the function must take (config, report, data, rng)",
    ),
    "epochs out of order": (
        "def objective(config, report, data, rng):\n    report(2, 0.5)\n    return 0.5\n",
        "epochs are reported once each, in order: expected 1, got 2",
    ),
    "import fails": ("import no_such_package_anywhere\n", "importing {m} failed: ModuleNotFound"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_function_is_one_line_and_exit_2(tmp_path, capsys, request, case):
    code, message = BROKEN[case]
    module = module_name(request)
    spec = user_project(tmp_path, module, n_trials=2, code=code)
    db = f"sqlite:///{tmp_path / 'b.db'}"
    capsys.readouterr()
    assert main(["run", str(spec), "--storage", db, "--workers", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hpsearch: error: ") and err.count("\n") == 1, err
    assert message.format(m=module) in err, err


def test_diverging_reports_and_a_swallowed_prune_end_as_pruned(tmp_path, capsys, request):
    code = """
import math
import optuna


def objective(config, report, data, rng):
    if config.trial == 0:
        report(1, math.nan)
    score = (math.log10(config["lr"]) + 5.0) / 10.0  # the larger lr, the better
    for epoch in range(1, config.epochs + 1):
        try:
            report(epoch, score)
        except optuna.TrialPruned:
            pass  # a function that catches too much is still pruned
    return score
"""
    module = module_name(request)
    spec = user_project(tmp_path, module, n_trials=10, code=code)
    db = f"sqlite:///{tmp_path / 'd.db'}"
    assert main(["run", str(spec), "--storage", db, "--workers", "1", "--no-progress"]) == 0
    done = trials(db, module)
    assert done[0].state == TrialState.PRUNED and done[0].user_attrs["diverged"] is True
    pruned = [t for t in done[1:] if t.state == TrialState.PRUNED]
    assert pruned and all(not t.user_attrs["diverged"] for t in pruned)
    assert all(t.user_attrs["stop_reason"].startswith("pruned after epoch 1") for t in pruned)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_chapter6_example_runs_and_finals(tmp_path, capsys):
    """docs/guide/own-code.md: the book's recipe on a net of its own."""
    db = f"sqlite:///{tmp_path / 'ex.db'}"
    spec = EXAMPLES / "chapter6" / "ch6.toml"
    args = ["run", str(spec), "--storage", db, "--trials", "6", "--epochs", "3", "--no-progress"]
    assert main(args) == 0
    done = trials(db, "book-ch6-own-net")
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in done)
    assert any(len(t.user_attrs.get("train_loss", [])) == 3 for t in done)
    final = ["final", "--study", "book-ch6-own-net", "--storage", db]
    assert main([*final, "--code", str(spec.parent)]) == 0
    assert "test score" in capsys.readouterr().out


def test_a_data_file_changed_during_a_run_is_not_mixed_into_it(tmp_path, request):
    """The function rewrites the study's CSV (twice the rows) in its second trial: every
    trial still trains on the data the run loaded and checked at its start."""
    folder = tmp_path / "project"
    folder.mkdir()
    rows = "".join(f"{i % 7},{(i * 3) % 5},{'xyz'[i % 3]}\n" for i in range(60))
    table = folder / "t.csv"
    table.write_text("a,b,label\n" + rows)
    module = module_name(request)
    (folder / f"{module}.py").write_text(
        f"""
from pathlib import Path


def objective(config, report, data, rng):
    if config.trial == 1:
        Path({str(table)!r}).write_text("a,b,label\\n" + {rows!r} * 2)
    return float(len(data.t_train))
"""
    )
    spec = folder / "s.toml"
    spec.write_text(
        SPEC.format(name=module, module=module, n_trials=4).replace(
            'name = "digits"', 'name = "csv:t.csv"\nlabel = "label"'
        )
    )
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["run", str(spec), "--storage", db, "--workers", "1", "--no-progress"]) == 0
    values = {t.value for t in trials(db, module)}
    assert values == {38.0}  # 60 rows: 12 held out for test, 10 for validation
    assert main(["run", str(spec), "--storage", db, "--trials", "6", "--no-progress"]) == 2


def test_a_function_cannot_change_the_data_the_next_trial_gets(tmp_path, capsys, request):
    code = "def objective(config, report, data, rng):\n    rng.shuffle(data.x_train)\n"
    module = module_name(request)
    spec = user_project(tmp_path, module, n_trials=2, code=code)
    db = f"sqlite:///{tmp_path / 'r.db'}"
    capsys.readouterr()
    assert main(["run", str(spec), "--storage", db, "--workers", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "read-only" in err and f"{module}.py:2" in err and err.count("\n") == 1, err


def test_a_setting_of_another_type_than_its_range_is_no_start_point(tmp_path, request):
    module = module_name(request)
    spec = user_project(tmp_path, module, n_trials=2)
    text = spec.read_text().replace("settings = { lr = 0.5 }", 'settings = { lr = "big" }')
    spec.write_text(text)
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", str(spec), "--storage", db, "--workers", "1", "--no-progress"]) == 0
    assert all(t.params["lr"] != "big" for t in trials(db, module))


@pytest.mark.parametrize("where", [".", "sub"])
def test_code_under_the_working_directory_is_untrusted_until_given_with_code(
    tmp_path, monkeypatch, request, where
):
    """On sys.path as `python -m` puts the working directory (".") or as a relative
    PYTHONPATH entry puts a folder under it ("sub"), it is the working directory's code
    all the same; named with --code (trusted), it is imported."""
    module = module_name(request)
    folder = tmp_path / where
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(USER_CODE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(folder.resolve()))
    with pytest.raises(EntryError, match="in the working directory, which is not trusted"):
        load_entry(f"{module}:objective")
    assert callable(load_entry(f"{module}:objective", trusted([folder])))


def test_run_without_a_spec_works_in_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no studies/ folder here
    db = f"sqlite:///{tmp_path / 'd.db'}"
    args = ["run", "--storage", db, "--trials", "1", "--epochs", "1", "--workers", "1"]
    assert main([*args, "--no-progress"]) == 0
