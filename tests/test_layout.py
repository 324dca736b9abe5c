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


def modules(package: Path = PACKAGE) -> list[Path]:
    return sorted(package.rglob("*.py"))


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, package_folder: Path = PACKAGE) -> set[str]:
    """Every hpsearch module `path` imports, anywhere in it (a function's body too),
    written absolute, relative or as `importlib.import_module("...")`."""
    root = package_folder.parent
    names = {module_name(p, root) for p in modules(package_folder)}
    here = module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, *([base] if base else [])])
            if not base.startswith("hpsearch"):
                continue
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in names else base)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("hpsearch")}
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and str(node.args[0].value).startswith("hpsearch")
        ):
            found.add(node.args[0].value)
    return found - {here}


def loaded(path: Path, package_folder: Path = PACKAGE) -> set[str]:
    """What importing `path` runs: the modules it imports and the packages above them
    (their __init__ runs first), less its own packages, which ran before it."""
    here = module_name(path, package_folder.parent)
    own = {".".join(here.split(".")[:i]) for i in range(1, len(here.split(".")) + 1)}
    found = set()
    for module in imported(path, package_folder):
        parts = module.split(".")
        found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return found - own


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


def cycles_in(package_folder: Path) -> list[list[str]]:
    """Import cycles among the modules of `package_folder`. A cycle through a package
    counts: importing any module of a package first runs its __init__, and what that
    imports."""
    root = package_folder.parent
    graph = {module_name(p, root): loaded(p, package_folder) for p in modules(package_folder)}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for other in sorted(graph.get(node, ())):
            if state.get(other) == 1:
                cycles.append([*trail[trail.index(other) :], other])
            elif other not in state:
                visit(other, [*trail, other])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_cycles():
    cycles = cycles_in(PACKAGE)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_import_rules_see_relative_dynamic_and_package_imports(tmp_path):
    files = {
        "__init__.py": "",
        "low/__init__.py": "from hpsearch.low import a\n",
        "low/a.py": "from ..high import b\n",  # relative, upward
        "low/c.py": "import importlib\nimportlib.import_module('hpsearch.high.b')\n",
        "high/__init__.py": "",
        "high/b.py": "from hpsearch.low.c import x\n",  # runs low/__init__, then a
        "ok/__init__.py": "from hpsearch.ok import d\n",
        "ok/d.py": "from hpsearch.ok import e\n",  # its own package ran before it
        "ok/e.py": "",
    }
    for name, text in files.items():
        (tmp_path / "hpsearch" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "hpsearch" / name).write_text(text)
    package = tmp_path / "hpsearch"
    assert imported(package / "low" / "a.py", package) == {"hpsearch.high.b"}
    assert imported(package / "low" / "c.py", package) == {"hpsearch.high.b"}
    found = {" -> ".join(c) for c in cycles_in(package)}
    assert found == {
        "hpsearch.high.b -> hpsearch.low -> hpsearch.low.a -> hpsearch.high.b",
        "hpsearch.high.b -> hpsearch.low.c -> hpsearch.high.b",
    }


# Process-wide hooks a command installs once, as it configures logging: settings of
# the process, not state a module keeps.
PROCESS_HOOKS = {"threading.excepthook"}


def mutable_state(tree: ast.Module) -> list[str]:
    """Top-level names the module changes after import (an item set or deleted, an
    attribute set, a mutating method called, or rebound through `global`), and
    top-level instances of the module's classes whose methods change the instance.
    Constant tables are not state, nor is memoizing a pure function (functools.cache):
    the same call returns the same answer whatever ran before."""
    names, bound, classes = set(), set(), {}  # assigned; imported or defined; classes
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
        if isinstance(node, ast.Import):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            bound |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.ClassDef):
            bound.add(node.name)
            classes[node.name] = node
    found = []
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id in classes
            and _changes_itself(classes[value.func.id])
        ):
            found.append(f"an instance of {value.func.id} (line {node.lineno})")
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.append(f"global {', '.join(node.names)} (line {node.lineno})")
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
            if isinstance(node.value, ast.Name) and node.value.id in names:
                found.append(f"{node.value.id}[...] changed (line {node.lineno})")
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store | ast.Del):
            name = f"{getattr(node.value, 'id', '')}.{node.attr}"
            known = isinstance(node.value, ast.Name) and node.value.id in names | bound
            if known and name not in PROCESS_HOOKS:
                found.append(f"{name} set (line {node.lineno})")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATORS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in names
        ):
            found.append(f"{node.func.value.id}.{node.func.attr}() (line {node.lineno})")
    return found


def _changes_itself(cls: ast.ClassDef) -> bool:
    """Whether a method of `cls` other than __init__ sets an attribute of self."""
    for method in cls.body:
        if isinstance(method, ast.FunctionDef) and method.name != "__init__":
            for node in ast.walk(method):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.ctx, ast.Store | ast.Del)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "self"
                ):
                    return True
    return False


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
        "class Flag:\n    on = False\n"
        "class Counter:\n    def __init__(self):\n        self.n = 0\n"
        "    def bump(self):\n        self.n += 1\n"
        "COUNTER = Counter()\n"
        "def h():\n    Flag.on = True\n"
    )
    assert sorted(item.split()[0] for item in mutable_state(tree)) == [
        "CACHE[...]",
        "Flag.on",
        "SEEN.add()",
        "an",
        "global",
    ]


def test_every_module_says_what_it_owns():
    for path in modules() + sorted((ROOT / "scripts").rglob("*.py")):
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path} has no docstring"


def test_code_carries_no_history():
    """Docstrings and comments say why, never when: no issue numbers, commit ids, dates
    or measured durations ("takes ~1 s") in the package, the benchmarks or the scripts."""
    history = re.compile(
        r"#\d{2,}\b|\bissue\s+\d+|\bcommits? [0-9a-f]{7,40}\b|\b[0-9a-f]{7,40}\b(?=.*commit)"
        r"|\b20\d\d-\d\d-\d\d\b|~\s?\d+(\.\d+)?\s?(ms|s|seconds|minutes|min)\b"
    )
    found = []
    for path in (
        modules()
        + sorted((ROOT / "bench").rglob("*.py"))
        + sorted((ROOT / "scripts").rglob("*.py"))
    ):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if history.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "history in code:\n" + "\n".join(found)


def test_optunas_private_names_are_read_in_one_module_only():
    attributes = "backend|study_id|trial_id|storage|cached_frozen_trial|n_startup_trials"
    private = re.compile(rf"optuna\.[a-z_.]*\._|from optuna[a-z_.]*\._|\._(?:{attributes})\b")
    readers = {path for path in modules() if private.search(path.read_text())}
    assert readers == {FENCE}
