"""The code's shape, as rules rather than names: imports point down the layers, no
module imports itself back through others (an import inside a function counts), no
module keeps mutable state at its top level, every module says what it owns, and
Optuna's private names are read in one module only."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hpsearch"
FENCE = PACKAGE / "storage" / "fast_rdb" / "names.py"

# Lower layers know nothing of higher ones; one layer's packages may not import each other
# unless a later entry of the same layer (search may read analysis; never the reverse).
LAYERS = [
    {"errors", "stop"},
    {"nn"},
    {"data"},
    {"train", "spec"},
    {"records"},
    {"storage"},
    {"trials"},
    {"analysis", "experiments"},
    {"search"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
SIDEWAYS = {("search", "analysis")}  # (importer, imported) within one layer

MUTATORS = {"append", "extend", "insert", "add", "update", "setdefault", "pop", "popitem"}
MUTATORS |= {"remove", "discard", "clear", "appendleft", "__setitem__"}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every hpsearch module `path` imports, anywhere in it (a function's body too)."""
    names = {module_name(p) for p in modules()}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            if not base.startswith("hpsearch"):
                continue
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in names else base)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("hpsearch")}
    return found - {module_name(path)}


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "hpsearch"


def test_every_package_is_in_a_layer():
    tops = {top(module_name(p)) for p in modules()} - {"hpsearch"}
    assert tops <= set(RANK), f"place {tops - set(RANK)} in LAYERS"


def test_imports_point_down():
    upward = []
    for path in modules():
        here = top(module_name(path))
        if here == "hpsearch":
            continue
        for other in imported(path):
            there = top(other)
            if there in (here, "hpsearch"):
                continue
            if RANK[there] > RANK[here] or (
                RANK[there] == RANK[here] and (here, there) not in SIDEWAYS
            ):
                upward.append(f"{module_name(path)} -> {other}")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = {module_name(p): imported(p) for p in modules()}
    # A package imports its own modules from __init__: the package and a module of it are
    # one node only when the module does not import the package back.
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for other in sorted(graph.get(node, ())):
            if other.startswith(node + "."):  # a package's own re-exports
                continue
            if state.get(other) == 1:
                cycles.append([*trail[trail.index(other) :], other] if other in trail else [])
            elif other not in state:
                visit(other, [*trail, other])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not [c for c in cycles if c], "import cycles:\n" + "\n".join(
        " -> ".join(c) for c in cycles if c
    )


def mutable_state(tree: ast.Module) -> list[str]:
    """Top-level names the module changes after import (an item set or deleted, a
    mutating method called, or rebound through `global`). Constant tables are not
    state, nor is memoizing a pure function (functools.cache): the same call returns
    the same answer whatever ran before."""
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.append(f"global {', '.join(node.names)} (line {node.lineno})")
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
            if isinstance(node.value, ast.Name) and node.value.id in names:
                found.append(f"{node.value.id}[...] changed (line {node.lineno})")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATORS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in names
        ):
            found.append(f"{node.func.value.id}.{node.func.attr}() (line {node.lineno})")
    return found


def test_no_module_level_mutable_state():
    found = []
    for path in modules():
        for item in mutable_state(ast.parse(path.read_text())):
            found.append(f"{path.relative_to(ROOT)}: {item}")
    assert not found, "module-level mutable state:\n" + "\n".join(found)


def test_the_mutable_state_rule_catches_what_it_names():
    tree = ast.parse(
        "CACHE = {}\nSEEN: set[int] = set()\nTABLE = {'a': 1}\nDONE = []\n"
        "def f(key):\n    CACHE[key] = 1\n    SEEN.add(key)\n    return TABLE[key]\n"
        "def g():\n    global DONE\n    DONE = [1]\n"
    )
    assert sorted(item.split()[0] for item in mutable_state(tree)) == [
        "CACHE[...]",
        "SEEN.add()",
        "global",
    ]


def test_every_module_says_what_it_owns():
    for path in modules() + sorted((ROOT / "scripts").rglob("*.py")):
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path} has no docstring"


def test_code_carries_no_history():
    """Docstrings and comments say why, never when: no issue numbers, commit ids or dates."""
    history = re.compile(
        r"#\d{2,}\b|\bissue\s+\d+|\bcommits? [0-9a-f]{7,40}\b|\b[0-9a-f]{7,40}\b(?=.*commit)"
        r"|\b20\d\d-\d\d-\d\d\b"
    )
    found = []
    for path in modules():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if history.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "history in code:\n" + "\n".join(found)


def test_optunas_private_names_are_read_in_one_module_only():
    attributes = "backend|study_id|trial_id|storage|cached_frozen_trial|n_startup_trials"
    private = re.compile(rf"optuna\.[a-z_.]*\._|from optuna[a-z_.]*\._|\._(?:{attributes})\b")
    readers = {path for path in modules() if private.search(path.read_text())}
    assert readers == {FENCE}
