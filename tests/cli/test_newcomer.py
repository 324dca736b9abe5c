"""The command as a newcomer meets it: read-only commands that create nothing, hints that
run as printed, --study left out, help with every default once, the closest option on a
typo, progress off a terminal and a bar drawn once on one."""

import contextlib
import io
import os
import re
import shlex
import sys
from pathlib import Path

import optuna
import pytest

from hpsearch.cli import build_parser, main
from hpsearch.cli.common import program
from tests.support import TINY

SCRIPT = Path(sys.executable).parent / "hpsearch"  # the console script of this environment


def write_spec(folder: Path, n_trials: int) -> Path:
    spec = folder / "tiny.toml"
    spec.write_text(TINY.format(n_trials=n_trials, sampler="random", pruner="none"))
    return spec


class Terminal(io.StringIO):
    """stdout and stderr of a terminal, in the order they were written."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A database holding one finished study ('tiny', 20 trials of one epoch), and what
    its run wrote to stderr, which was not a terminal."""
    folder = tmp_path_factory.mktemp("finished")
    url = f"sqlite:///{folder / 'one.db'}"
    spec = write_spec(folder, n_trials=20)
    stderr, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        code = main(["run", str(spec), "--storage", url, "--epochs", "1", "--workers", "1"])
    assert code == 0, stderr.getvalue()
    return url, stderr.getvalue()


# -- 1. read-only commands create nothing ---------------------------------------------------


READ_ONLY = [["trials"], ["report"], ["narrow"], ["final"], ["dashboard"]]


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: c[0])
def test_a_read_only_command_on_a_missing_database_creates_nothing(
    command, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    default = tmp_path / "studies" / "hpsearch.db"
    named = [] if command == ["dashboard"] else ["--study", "X"]
    for args in ([*command, *named], command, [*command, "--storage", "sqlite:///sub/x.db"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("hpsearch: error: "), err
        assert "nothing was created" in err
        place = default if "--storage" not in args else tmp_path / "sub" / "x.db"
        assert str(place) in err and "sqlite:///" not in err, err
    assert main([*command, "--storage", "journal:j.log"]) == 2
    assert f"no journal at {tmp_path / 'j.log'}" in capsys.readouterr().err
    (tmp_path / "empty.db").touch()  # an empty file stays empty
    assert main([*command, "--storage", "sqlite:///empty.db"]) == 2
    assert "holds no studies" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]
    assert (tmp_path / "empty.db").stat().st_size == 0


# -- 2. hints run as printed ------------------------------------------------------------------


def test_the_hints_name_the_command_the_way_it_runs_here(tmp_path, monkeypatch):
    if not SCRIPT.is_file():
        pytest.skip("no hpsearch console script beside this interpreter")
    elsewhere = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != SCRIPT.parent
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", elsewhere)
    monkeypatch.setattr(sys, "argv", [str(SCRIPT)])  # outside the working folder: its path
    assert program() == shlex.quote(str(SCRIPT))
    monkeypatch.setenv("PATH", f"{SCRIPT.parent}{os.pathsep}{elsewhere}")
    assert program() == "hpsearch"  # PATH finds this very script
    main_module = Path(sys.modules["hpsearch.cli"].__file__).parent / "__main__.py"
    monkeypatch.setattr(sys, "argv", [str(main_module)])  # python -m hpsearch.cli
    assert program() == "hpsearch"
    monkeypatch.setenv("PATH", elsewhere)
    assert program() == f"{shlex.quote(sys.executable)} -m hpsearch.cli"
    monkeypatch.setattr(sys, "argv", ["-c"])  # another program called main: a test, a notebook
    assert program() == "hpsearch"


def test_a_printed_hint_runs_as_printed(tmp_path, monkeypatch, capsys):
    """The console script started by a relative path that PATH does not hold (as a
    shell starts it, sys.argv[0] is that path): `submit` prints how to start a
    worker, and that line runs as it is, here in this process."""
    if not SCRIPT.is_file():
        pytest.skip("no hpsearch console script beside this interpreter")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "hpsearch").symlink_to(SCRIPT)
    write_spec(tmp_path, n_trials=1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", os.defpath)
    monkeypatch.setattr(sys, "argv", ["bin/hpsearch"])
    assert main(["submit", "tiny.toml", "--storage", "sqlite:///rel.db"]) == 0
    out = capsys.readouterr().out
    hint = next(line for line in out.splitlines() if "start workers with: " in line)
    argv = shlex.split(hint.split("start workers with: ", 1)[1])
    url = f"sqlite:///{tmp_path / 'rel.db'}"  # absolute: a worker may start anywhere
    assert argv == ["bin/hpsearch", "worker", "--storage", url, "--study", "tiny"], hint
    assert os.access(argv[0], os.X_OK)
    assert main([*argv[1:], "--no-progress"]) == 0
    study = optuna.load_study(study_name="tiny", storage=url)
    assert len(study.trials) == 1


def test_narrow_says_how_to_run_the_next_round(finished, tmp_path, monkeypatch, capsys):
    url, _ = finished
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(SCRIPT)])
    monkeypatch.setenv("PATH", os.defpath)
    assert main(["narrow", "--storage", url, "--trials", "2"]) == 0  # --study left out
    hint = capsys.readouterr().out.splitlines()[-1]
    assert hint == f"run it with: {shlex.quote(str(SCRIPT))} run studies/tiny-r2.toml", hint
    assert (tmp_path / "studies" / "tiny-r2.toml").is_file()


# -- 3. --study left out, --study-name, report's folder ---------------------------------------


def trial_rows(table: str) -> int:
    """The rows under the header of a printed trials table."""
    lines = table.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["number"])
    return len(lines) - header - 1


def test_study_may_be_left_out_when_the_database_holds_one(finished, tmp_path, capsys):
    url, _ = finished
    assert main(["trials", "--storage", url]) == 0
    assert trial_rows(capsys.readouterr().out) == 20
    assert main(["trials", "--study-name", "tiny", "--storage", url]) == 0
    assert trial_rows(capsys.readouterr().out) == 20

    several = f"sqlite:///{tmp_path / 'two.db'}"
    for name in ("first", "second"):
        optuna.create_study(study_name=name, storage=several)
    for command in ("trials", "report", "narrow", "final"):
        assert main([command, "--storage", several]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert f"{tmp_path / 'two.db'} holds 2 studies; name one with --study" in err, err
        assert "'first', 'second'" in err


def test_report_writes_to_reports_study_by_default(finished, tmp_path, monkeypatch, capsys):
    """Without --out, `report` writes reports/STUDY/ in the working folder and says where;
    a file where that folder would be shows the folder chosen. The figures are drawn but
    not rendered to PNG, which takes seconds (tests/analysis renders them)."""
    url, _ = finished
    saved = []
    monkeypatch.setattr("hpsearch.analysis.plots.save", lambda figure, path: saved.append(path))
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert main(["report", "--storage", url]) == 0
    out = capsys.readouterr().out.splitlines()
    folder = tmp_path / "here" / "reports" / "tiny"
    assert out[-1].startswith("report: "), out
    assert Path(out[-1].removeprefix("report: ")).resolve() == folder.resolve() / "report.md", out
    assert (folder / "report.md").read_text().startswith("# Study `tiny`")
    figures = [Path(line.removeprefix("figure: ")) for line in out if line.startswith("figure: ")]
    assert figures and figures == saved, out
    assert all(f.resolve().parent == folder.resolve() for f in figures), out

    (tmp_path / "blocked").mkdir()
    monkeypatch.chdir(tmp_path / "blocked")
    (tmp_path / "blocked" / "reports").mkdir()
    (tmp_path / "blocked" / "reports" / "tiny").write_text("in the way")
    assert main(["report", "--storage", url]) == 2
    assert "cannot create report folder reports/tiny" in capsys.readouterr().err


# -- 4. help: a description, each default once -------------------------------------------------


def option_blocks(text: str) -> list[str]:
    """Each option's entry of a help text, its lines joined."""
    blocks: list[str] = []
    for line in text.split("\n\n", 1)[-1].splitlines():
        if re.match(r"  \S", line):
            blocks.append(line.strip())
        elif line.startswith("   ") and blocks:
            blocks[-1] += " " + line.strip()
    return blocks


def test_every_subcommand_has_a_description_and_shows_each_default_once(capsys):
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        with pytest.raises(SystemExit) as exit_:
            main([name, "--help"])
        assert exit_.value.code == 0
        text = capsys.readouterr().out
        description = text.split("\n\n")[1]
        assert not description.startswith(("positional arguments", "options")), name
        blocks = option_blocks(text)
        assert len(blocks) == len(commands[name]._actions), (name, blocks)
        assert all(action.help for action in commands[name]._actions), name
        for block in blocks:
            assert block.count("(default") <= 1, (name, block)
            assert "(default: None)" not in block, (name, block)
    main_help = {block.split()[0]: block for block in option_blocks(_help("narrow", capsys))}
    for option, default in [("--top", "0.2"), ("--margin", "0.1"), ("--bootstrap", "0")]:
        assert main_help[option].endswith(f"(default: {default})"), main_help[option]
    assert "(default:" in main_help["--trials"]


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return capsys.readouterr().out


# -- 5. an unknown option -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run", "--trails", "5"], "unrecognized arguments: --trails; did you mean --trials?"),
        (["trials", "--stduy", "x"], "did you mean --study?"),
        (["trials", "--trails"], "--trials is an option of run, submit and narrow, not of trials"),
    ],
)
def test_an_unknown_option_shows_the_usage_and_the_closest_option(args, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: hpsearch {args[0]} "), err
    assert says in err, err


# -- 6. no study named X -----------------------------------------------------------------------


def test_no_study_named_x_says_how_many_there_are(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'many.db'}"
    storage = optuna.storages.RDBStorage(url)
    for number in range(12):
        optuna.create_study(study_name=f"study-{number:02d}", storage=storage)
    storage.engine.dispose()
    assert main(["trials", "--study", "study-1", "--storage", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"no study named 'study-1' in {tmp_path / 'many.db'}" in err
    assert "12 studies there: 'study-00'," in err and "'study-09' and 2 more" in err, err


# -- 7. progress -----------------------------------------------------------------------------


def test_progress_off_a_terminal_is_a_line_every_tenth_of_the_budget(finished):
    _, stderr = finished
    lines = [line for line in stderr.splitlines() if "trials finished" in line]
    counts = [int(re.match(r"tiny: (\d+)/20 trials finished", line).group(1)) for line in lines]
    assert 2 <= len(counts) <= 11 and counts == sorted(counts), stderr
    assert counts[-1] == 20 and "best val acc" in lines[-1]


def test_on_a_terminal_the_bar_is_drawn_above_the_results_not_below(tmp_path, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stderr", terminal)
    spec = write_spec(tmp_path, n_trials=3)
    url = f"sqlite:///{tmp_path / 'tty.db'}"
    assert main(["run", str(spec), "--storage", url, "--epochs", "1", "--workers", "1"]) == 0
    text = terminal.getvalue()
    table = text.index("completed trials:")
    assert "3/3" in text[:table], text
    assert "\r" not in text[table:] and "trial/s" not in text[table:], text


# -- 9. where hpsearch differs from Optuna's and scikit-learn's habits --------------------------


def test_the_options_that_differ_from_optuna_and_scikit_learn_say_so(capsys):
    run = {block.split()[0]: block for block in option_blocks(_help("run", capsys))}
    assert "total" in run["--trials"] and "Optuna's n_trials is an increment" in run["--trials"]
    assert "number of cores" in run["--workers"] and "scikit-learn" in run["--workers"]
    submit = {block.split()[0]: block for block in option_blocks(_help("submit", capsys))}
    assert "Optuna's n_trials is an increment" in submit["--trials"]
