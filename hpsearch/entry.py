"""Importing a user's entry point (`package.module:function`) without trusting the
database that named it.

A study's spec, entry point included, lives in a database that several people may
write to. Whoever can write a spec there must not be able to make a worker run code of
their choosing: the database holds the entry's name, never its code, and a worker
imports it only from its own environment (its installed packages and its own
`sys.path`, the working directory excepted) or from folders named on its command line
(`hpsearch worker --code DIR`; `hpsearch run` adds the spec file's folder). A module
found anywhere else, the working directory included, is refused with one line.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hpsearch.errors import HpsearchError

# What an entry function is called with, by keyword: see hpsearch.python_objective.
ENTRY_ARGUMENTS = ("config", "report", "data", "rng")


class EntryError(HpsearchError):
    """An entry point that cannot or may not be imported and called."""


# The folders this process may import users' code from, besides its environment: set
# once by the command (`--code`, the spec's folder for `run`), passed on to workers.
_TRUSTED: list[Path] = []


def trust_code(folders: Sequence[str | Path]) -> None:
    """Let this process import entry points from `folders` too."""
    for folder in folders:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise EntryError(f"--code {folder}: no such folder")
        if path not in _TRUSTED:
            _TRUSTED.append(path)


def trusted_code() -> tuple[str, ...]:
    return tuple(str(path) for path in _TRUSTED)


def load_entry(entry: str) -> Callable[..., float]:
    """The function `entry` names, imported from this process's environment or the
    trusted folders only (`trust_code`); checked to take (config, report, data, rng)."""
    module_name, _, function_name = entry.partition(":")
    folders = list(_TRUSTED)
    saved = list(sys.path)
    sys.path[:] = _trusted_path(folders)
    importlib.invalidate_caches()
    try:
        function = _import(entry, module_name, function_name, folders)
    finally:  # the user's code may import lazily from its folder later on
        sys.path[:] = [str(f) for f in folders if str(f) not in saved] + saved
    _check_signature(entry, function)
    return function


def _import(
    entry: str, module_name: str, function_name: str, folders: list[Path]
) -> Callable[..., float]:
    top = module_name.split(".")[0]
    loaded = sys.modules.get(top)
    try:
        found = importlib.util.find_spec(top) if loaded is None else loaded.__spec__
    except (ImportError, ValueError) as exc:
        raise EntryError(f"model.entry {entry!r}: cannot look up {top!r}: {exc}") from None
    if found is None:
        raise EntryError(
            f"model.entry {entry!r}: no module {top!r} in this environment or the --code "
            f"folders ({_listing(folders)}){_cwd_hint(top)}"
        )
    origin = _origin(found)
    if origin is not None and _in_working_directory(origin, folders):
        raise EntryError(
            f"model.entry {entry!r}: {top!r} resolves to {origin}, in the working directory, "
            "which is not trusted; name its folder with --code DIR"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module itself is broken: say where
        raise EntryError(
            f"model.entry {entry!r}: importing {module_name} failed: {_why(exc)}"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise EntryError(f"model.entry {entry!r}: {module_name} has no function {function_name!r}")
    return function


def _trusted_path(folders: list[Path]) -> list[str]:
    """`sys.path` without the working directory (Python puts it first for `python -m`
    and scripts run from it), with the --code folders in front."""
    cwd = Path.cwd().resolve()
    kept = [
        entry
        for entry in sys.path
        if entry not in ("", ".") and (Path(entry).resolve() != cwd or Path(entry) in folders)
    ]
    return [str(folder) for folder in folders if str(folder) not in kept] + kept


def _origin(found: importlib.machinery.ModuleSpec) -> Path | None:
    if found.origin and found.origin not in ("built-in", "frozen"):
        return Path(found.origin).resolve()
    locations = list(found.submodule_search_locations or [])
    return Path(locations[0]).resolve() if locations else None


def _in_working_directory(origin: Path, folders: list[Path]) -> bool:
    """A module in the working directory (and not in a --code folder or an installed
    environment inside it, such as a project's .venv)."""
    cwd = Path.cwd().resolve()
    if cwd not in origin.parents or any(folder in origin.parents for folder in folders):
        return False
    installed = (Path(p).resolve() for p in sys.path if p not in ("", "."))
    return not any(path in origin.parents for path in installed if path != cwd)


def _cwd_hint(top: str) -> str:
    cwd = Path.cwd()
    if (cwd / f"{top}.py").is_file() or (cwd / top).is_dir():
        return f"; {top!r} is in the working directory, which is not trusted: --code {cwd}"
    return "; a worker needs --code DIR for a module that is not installed"


def _listing(folders: list[Path]) -> str:
    return ", ".join(str(folder) for folder in folders) or "none given"


def _why(error: BaseException) -> str:
    """The error and the innermost place in the user's code it came from."""
    frames = inspect.getinnerframes(error.__traceback__) if error.__traceback__ else []
    place = next(
        (
            f" at {frame.filename}:{frame.lineno}"
            for frame in reversed(frames)
            if "hpsearch" not in Path(frame.filename).parts[-2:-1]
        ),
        "",
    )
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}{place}".replace(os.linesep, " ")


def _check_signature(entry: str, function: Callable) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a builtin or C function: its call will say
    try:
        signature.bind(**dict.fromkeys(ENTRY_ARGUMENTS))
    except TypeError:
        raise EntryError(
            f"model.entry {entry!r}: the function must take ({', '.join(ENTRY_ARGUMENTS)}); "
            f"it takes {signature}"
        ) from None


def describe_error(error: BaseException) -> str:
    """One line for an exception raised inside a user's entry function."""
    return _why(error)
