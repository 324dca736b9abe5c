"""Every command the README and the guides (docs/guide/*.md) show is run here, page by
page, in a temporary directory, and must exit as the page says.

The convention a page follows (docs/guide/README.md says it to writers):

- Shell commands are in ```console blocks, one per line that starts with `$ `; a line
  ending in a backslash continues on the next. The block's other lines are the output
  the command prints and are not run. Each command runs in its own `bash -c`, so `cd`
  and `export` do not carry over.
- ```python blocks run too, each as its own `python -c` process, in page order with the
  commands (a block must import what it uses).
- A ```python or ```toml block whose first line is `# file: NAME` is not run: its text
  is written to NAME, where the commands after it find it.
- A command whose trailing comment starts with `# manual:` (a python block whose first
  line does) is not run; the page says why after the colon. Only commands that cannot
  run here are manual: `make study` (builds .venv), the dashboard (serves until
  Ctrl-C), PostgreSQL servers, installs.
- A trailing comment `# exit N` says the command exits with N; every other exits 0.
- Every other ```toml block must be valid TOML. Shell goes only into ```console blocks:
  ```sh, ```bash and ```shell blocks are refused, and so is a `$ ` line outside a console
  block, so that nothing a page shows as a command escapes this test.

What the test substitutes, and nothing else:

- `hpsearch` and `.venv/bin/hpsearch` run `sys.executable -m hpsearch.cli`, and `python`
  and `.venv/bin/python` run `sys.executable` (small scripts in the temporary
  directory's .venv/bin, which is first on PATH). A plain `hpsearch ...` line (no pipe,
  redirect, variable, glob or `&&`) runs in this process instead, through
  `hpsearch.cli.main` with the directory as its working directory: the same code the
  script runs, without a new interpreter importing Optuna and scikit-learn for each.
- The temporary directory holds copies of the repository's studies/*.toml, examples/
  and scripts/run_study.py, the files the pages name, and in each copied spec file
  `n_trials` is cut to at most 4 and `epochs` to at most 2, so that the pages' studies
  of those specs take seconds. Command lines and `# file:` blocks run as written: a page
  that gives `--trials`, `--epochs` or a spec of its own keeps them small.

Each page starts from a fresh directory. The count check compares the commands run with
the `$ ` lines and python blocks in the page's raw text, counted apart from the parser.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from hpsearch.cli import main

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guide"
PAGES = [ROOT / "README.md", *sorted(GUIDE.glob("*.md"))]

MAX_TRIALS = 4
MAX_EPOCHS = 2
STEP_TIMEOUT = 120  # seconds; a command that hangs fails instead of stalling the suite
COPIED = ("studies", "examples", "scripts/run_study.py")

FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)(.*)$")
FILE_LINE = re.compile(r"^#\s*file:\s*(\S+)\s*$")
MANUAL = re.compile(r"(?:^|\s)#\s*manual:\s*(\S.*)$")
EXIT = re.compile(r"(?:^|\s)#\s*exit\s+(\d+)\b")
REFUSED_LANGUAGES = {"sh", "bash", "shell", "zsh"}


class DocError(Exception):
    """A page that breaks the convention above."""


@dataclass(frozen=True)
class Step:
    kind: str  # "shell", "python" or "file"
    text: str  # the command, the code, or the file's content
    line: int  # where it starts in the page (1-based)
    exit: int = 0
    path: str | None = None  # a file step's name
    manual: str | None = None  # why it is not run


def parse(text: str, page: str = "<page>") -> list[Step]:
    """The steps of a page, in order."""
    lines = text.splitlines()
    steps: list[Step] = []
    in_console: set[int] = set()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, language = match.group(1), match.group(2).lower()
        start = i + 1
        end = start
        while end < len(lines) and not re.match(rf"^{re.escape(indent)}```\s*$", lines[end]):
            end += 1
        if end == len(lines):
            raise DocError(f"{page}:{i + 1}: a ``` block that is never closed")
        body = [
            line[len(indent) :] if line.startswith(indent) else line for line in lines[start:end]
        ]
        where = f"{page}:{i + 1}"
        if language in REFUSED_LANGUAGES:
            raise DocError(f"{where}: a ```{language} block; shell commands go in ```console")
        if language == "console":
            in_console.update(range(start, end))
            found = _console(body, start + 1, where)
            if not found:
                raise DocError(f"{where}: a ```console block without a `$ ` command")
            steps += found
        elif language in ("python", "toml"):
            steps += _code(language, body, start + 1, where)
        i = end + 1
    for number, line in enumerate(lines):
        if line.lstrip().startswith("$ ") and number not in in_console:
            raise DocError(f"{page}:{number + 1}: a `$ ` command outside a ```console block")
    return steps


def _console(body: list[str], first_line: int, where: str) -> list[Step]:
    steps = []
    i = 0
    while i < len(body):
        line = body[i]
        if not line.startswith("$ "):
            i += 1
            continue
        number = first_line + i
        command = line[2:]
        while command.endswith("\\") and i + 1 < len(body):
            i += 1
            command = command[:-1] + "\n" + body[i]
        i += 1
        manual = MANUAL.search(command)
        code = EXIT.search(command)
        steps.append(
            Step(
                "shell",
                command,
                number,
                exit=int(code.group(1)) if code else 0,
                manual=manual.group(1).strip() if manual else None,
            )
        )
    return steps


def _code(language: str, body: list[str], first_line: int, where: str) -> list[Step]:
    text = "\n".join(body) + "\n"
    head = body[0].strip() if body else ""
    named = FILE_LINE.match(head)
    if named:
        return [Step("file", text, first_line, path=named.group(1))]
    if language == "toml":
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DocError(f"{where}: a ```toml block that is not valid TOML: {exc}") from None
        return []
    manual = MANUAL.match(head)
    return [Step("python", text, first_line, manual=manual.group(1) if manual else None)]


def expected_counts(text: str) -> tuple[int, int]:
    """Commands and python blocks a page shows to run, counted from its raw lines: `$ `
    lines that are not manual, and ```python fences whose first line is neither a file
    name nor manual. Independent of `parse`, which must find as many."""
    lines = text.splitlines()
    shell = sum(1 for line in lines if line.lstrip().startswith("$ ") and not MANUAL.search(line))
    python = 0
    for i, line in enumerate(lines):
        if line.strip().startswith("```python") and i + 1 < len(lines):
            head = lines[i + 1].strip()
            if not (FILE_LINE.match(head) or MANUAL.match(head)):
                python += 1
    return shell, python


def cap_spec(path: Path) -> None:
    """n_trials and epochs of a spec file cut to the docs test's sizes."""
    text = path.read_text()
    for key, most in (("n_trials", MAX_TRIALS), ("epochs", MAX_EPOCHS)):
        text = re.sub(
            rf"^(\s*{key}\s*=\s*)(\d+)",
            lambda m, most=most: f"{m.group(1)}{min(int(m.group(2)), most)}",
            text,
            flags=re.MULTILINE,
        )
    path.write_text(text)


def workspace(folder: Path) -> dict[str, str]:
    """A directory like a checkout for the pages' commands, and their environment."""
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source,
                folder / name,
                ignore=shutil.ignore_patterns("__pycache__", "*.db", "*.db-*", "*-r[0-9]*.toml"),
            )
        else:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, folder / name)
    for spec in folder.rglob("*.toml"):
        cap_spec(spec)
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = shlex.quote(sys.executable)
    for name, line in (
        ("hpsearch", f'exec {python} -m hpsearch.cli "$@"'),
        ("python", f'exec {python} "$@"'),
    ):
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\n{line}\n")
        script.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.pop("VIRTUAL_ENV", None)
    return env


def plain_hpsearch(command: str) -> list[str] | None:
    """The arguments of a command that is `hpsearch` alone with its options, else None."""
    if any(character in command for character in "|&;<>$`*?()\\\n"):
        return None
    words = shlex.split(command)
    if words and words[0] in ("hpsearch", ".venv/bin/hpsearch"):
        return words[1:]
    return None


def run_in_process(arguments: list[str], folder: Path) -> tuple[int, str, str]:
    """`hpsearch ARGUMENTS` run by `hpsearch.cli.main` in `folder`: exit code, output."""
    out, err = io.StringIO(), io.StringIO()
    before = Path.cwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(arguments)
            except SystemExit as stop:  # argparse's own exits
                code = stop.code if isinstance(stop.code, int) else 1
    finally:
        os.chdir(before)
    return code, out.getvalue(), err.getvalue()


def run_steps(steps: list[Step], folder: Path, env: dict[str, str], page: str) -> int:
    """Run a page's steps in `folder`; the number of commands and python blocks run."""
    ran = 0
    for step in steps:
        where = f"{page}:{step.line}"
        if step.manual is not None:
            continue
        if step.kind == "file":
            target = folder / step.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(step.text)
            continue
        arguments = plain_hpsearch(step.text) if step.kind == "shell" else None
        if arguments is not None:
            code, stdout, stderr = run_in_process(arguments, folder)
            done = subprocess.CompletedProcess(arguments, code, stdout, stderr)
            if done.returncode != step.exit:
                raise AssertionError(
                    f"{where}: exit {done.returncode}, the page says {step.exit}:\n{step.text}\n"
                    f"--- stdout (end)\n{stdout[-2000:]}\n--- stderr (end)\n{stderr[-2000:]}"
                )
            ran += 1
            continue
        argv = (
            ["bash", "-c", step.text] if step.kind == "shell" else [sys.executable, "-c", step.text]
        )
        try:
            done = subprocess.run(
                argv,
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=STEP_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{where}: still running after {STEP_TIMEOUT} s:\n{step.text}"
            ) from None
        if done.returncode != step.exit:
            shown = step.text if step.kind == "shell" else textwrap.indent(step.text, "    ")
            raise AssertionError(
                f"{where}: exit {done.returncode}, the page says {step.exit}:\n{shown}\n"
                f"--- stdout (end)\n{done.stdout[-2000:]}\n--- stderr (end)\n{done.stderr[-2000:]}"
            )
        ran += 1
    return ran


@pytest.mark.slow  # whole studies in subprocesses, like the other end-to-end tests
@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_command_of_the_page_runs(page: Path, tmp_path: Path) -> None:
    text = page.read_text()
    name = str(page.relative_to(ROOT))
    steps = parse(text, name)
    env = workspace(tmp_path)
    ran = run_steps(steps, tmp_path, env, name)
    shell, python = expected_counts(text)
    assert ran == shell + python, (
        f"{name}: ran {ran} commands and python blocks; its text shows {shell} commands and "
        f"{python} python blocks to run"
    )


LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def test_links_between_the_pages_lead_somewhere() -> None:
    """Every relative link of the README and the guides names a file of the checkout, and
    every guide page is linked from the README and from the guide index."""
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links {target}"
    readme, index = (ROOT / "README.md").read_text(), (GUIDE / "README.md").read_text()
    for page in GUIDE.glob("*.md"):
        if page.name != "README.md":
            assert f"docs/guide/{page.name})" in readme, f"the README does not link {page.name}"
            assert f"]({page.name})" in index, f"docs/guide/README.md does not link {page.name}"


def test_the_pages_are_there_and_show_commands() -> None:
    """The parametrized test above has pages to run, and they hold commands: a convention
    broken so that nothing parses would otherwise pass unseen."""
    names = {p.name for p in PAGES}
    assert "README.md" in names and len(PAGES) >= 8, names
    steps = [step for page in PAGES for step in parse(page.read_text())]
    runnable = sum(1 for step in steps if step.kind != "file" and step.manual is None)
    manual = sum(1 for step in steps if step.manual is not None)
    assert runnable >= 25 and manual >= 5, (runnable, manual)


# -- the test's own tests: a broken page must fail it ----------------------------------


def _page_result(tmp_path: Path, text: str) -> int:
    env = workspace(tmp_path)
    return run_steps(parse(text), tmp_path, env, "<page>")


def test_a_broken_command_fails_the_page(tmp_path: Path) -> None:
    page = "```console\n$ hpsearch no-such-command\n```\n"
    with pytest.raises(AssertionError, match="exit 2, the page says 0"):
        _page_result(tmp_path, page)


def test_exit_codes_manual_commands_files_and_python_blocks(tmp_path: Path) -> None:
    page = textwrap.dedent(
        """\
        ```toml
        # file: exit.toml
        code = 3
        ```

        ```console
        $ python -c 'import tomllib; exit(tomllib.load(open("exit.toml", "rb"))["code"])'  # exit 3
        (no output)
        $ hpsearch dashboard      # manual: serves until Ctrl-C
        $ test -x .venv/bin/hpsearch && test -d studies && test -d examples
        ```

        ```python
        import pathlib
        assert pathlib.Path("exit.toml").is_file()
        ```

        ```python
        # manual: never run
        raise SystemExit(1)
        ```
        """
    )
    assert _page_result(tmp_path, page) == 3
    assert expected_counts(page) == (2, 1)
    failing = page.replace("assert pathlib", "assert not pathlib")
    with pytest.raises(AssertionError, match="exit 1, the page says 0"):
        _page_result(tmp_path / "again", failing)


@pytest.mark.parametrize(
    "page, problem",
    [
        ("```sh\nhpsearch run\n```\n", "```console"),
        ("```console\nhpsearch run\n```\n", "without a `\\$ ` command"),
        ("```text\n$ hpsearch run\n```\n", "outside a ```console block"),
        ("```toml\n[search\n```\n", "not valid TOML"),
        ("```console\n$ hpsearch run\n", "never closed"),
    ],
)
def test_pages_that_break_the_convention_are_refused(page: str, problem: str) -> None:
    with pytest.raises(DocError, match=problem):
        parse(page)


def test_spec_files_are_cut_to_small_studies(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text("[training]\nepochs = 50\n[search]\nn_trials = 100\n# n_trials = 9\n")
    cap_spec(spec)
    assert spec.read_text() == "[training]\nepochs = 2\n[search]\nn_trials = 4\n# n_trials = 9\n"
