"""The code's layout: the README's architecture table and hpsearch/ name the same
modules, every module (scripts' too) says what it owns, none grows past MAX_LINES, and
Optuna's private names are read in one module only."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hpsearch"
MAX_LINES = 400
FENCE = PACKAGE / "storage" / "fast_rdb" / "names.py"


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def scripts() -> list[Path]:
    return sorted((ROOT / "scripts").rglob("*.py"))


def layout_table() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("<!-- layout:begin -->")[1].split("<!-- layout:end -->")[0]


def test_the_readme_layout_names_every_module_and_only_existing_ones():
    table = layout_table()
    named = set(re.findall(r"`(hpsearch/[\w/]+(?:\.py|/))`", table))
    on_disk = {
        str(path.relative_to(ROOT)) + ("/" if path.is_dir() else "")
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert named == on_disk
    # Inside a package's row, its modules are named in backticks; each one exists.
    for row in table.splitlines():
        package = re.match(r"\| `(hpsearch/\w+/)`", row)
        if package:
            folder = ROOT / package.group(1)
            listed = set(re.findall(r"`(\w+)`", row.split("|")[2]))
            present = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("__")}
            present |= {p.parent.name for p in folder.glob("*/__init__.py")}
            assert listed <= present, f"{folder}: {listed - present} named but missing"


def test_every_module_opens_with_a_docstring_and_stays_small():
    for path in modules() + scripts():
        text = path.read_text()
        assert ast.get_docstring(ast.parse(text)), f"{path} says nothing of what it owns"
        lines = text.count("\n")
        assert lines <= MAX_LINES, f"{path} has {lines} lines; split it by concern"


def test_optunas_private_names_are_read_in_one_module_only():
    attributes = "backend|study_id|trial_id|storage|cached_frozen_trial|n_startup_trials"
    private = re.compile(rf"optuna\.[a-z_.]*\._|from optuna[a-z_.]*\._|\._(?:{attributes})\b")
    readers = {path for path in modules() if private.search(path.read_text())}
    assert readers == {FENCE}
