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
import site
import sys
import sysconfig
from collections.abc import Callable, Sequence
from pathlib import Path

from hpsearch.errors import HpsearchError

# What an entry function is called with, by keyword: see hpsearch.trials.python.
ENTRY_ARGUMENTS = ("config", "report", "data", "rng")


class EntryError(HpsearchError):
    """An entry point that cannot or may not be imported and called."""


def trusted(folders: Sequence[str | Path]) -> tuple[str, ...]:
    """The folders a command was told to trust (--code, a spec file's own folder),
    checked and made absolute, once each: what it hands to the spec and its workers."""
    found: list[str] = []
    for folder in folders:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise EntryError(f"--code {folder}: no such folder")
        if str(path) not in found:
            found.append(str(path))
    return tuple(found)


def load_entry(entry: str, code: Sequence[str | Path] = ()) -> Callable[..., float]:
    """The function `entry` names, imported from this process's environment or the
    `code` folders only (see `trusted`); checked to take (config, report, data, rng)."""
    module_name, _, function_name = entry.partition(":")
    folders = [Path(folder) for folder in code]
    saved = list(sys.path)
    sys.path[:] = _trusted_path(folders)
    importlib.invalidate_caches()
    try:
        function = _import(entry, module_name, function_name, folders)
    finally:  # the user's code may import lazily from its folder later on: last, so a
        # stray file there never shadows an installed package imported later
        sys.path[:] = saved + [str(f) for f in folders if str(f) not in saved]
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
    for origin in _origins(found):
        if _untrusted(origin, folders):
            raise EntryError(
                f"model.entry {entry!r}: {top!r} resolves to {origin}, in the working "
                "directory, which is not trusted; name its folder with --code DIR"
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


def _origins(found: importlib.machinery.ModuleSpec) -> list[Path]:
    """Where a module's code lies: its file, or every folder of a (namespace) package."""
    places = list(found.submodule_search_locations or [])
    if found.origin and found.origin not in ("built-in", "frozen", "namespace"):
        places.append(found.origin)
    return [Path(place).resolve() for place in places]


def _untrusted(origin: Path, folders: list[Path]) -> bool:
    """Code in the working directory (or under it) that is neither in a --code folder
    nor in an installed environment there (a project's .venv): the working directory
    is wherever the worker happened to start, and a sys.path entry under it (a relative
    PYTHONPATH) is no better."""
    cwd = Path.cwd().resolve()
    if origin != cwd and cwd not in origin.parents:
        return False
    trusted = [*folders, *_install_paths()]
    return not any(origin == path or path in origin.parents for path in trusted)


def _install_paths() -> list[Path]:
    paths = {sysconfig.get_paths()[key] for key in ("purelib", "platlib", "stdlib")}
    paths.update(site.getsitepackages())
    return [Path(path).resolve() for path in paths]


def _cwd_hint(top: str) -> str:
    cwd = Path.cwd()
    if (cwd / f"{top}.py").is_file() or (cwd / top).is_dir():
        return f"; {top!r} is in the working directory, which is not trusted: --code {cwd}"
    return "; a worker needs --code DIR for a module that is not installed"


def _listing(folders: list[Path]) -> str:
    return ", ".join(str(folder) for folder in folders) or "none given"


def _why(error: BaseException) -> str:
    """The error and the innermost place in the user's code it came from (a file of
    theirs: not hpsearch's, not the standard library's, not generated code)."""
    frames = inspect.getinnerframes(error.__traceback__) if error.__traceback__ else []
    hpsearch, installed = Path(__file__).resolve().parent, _install_paths()

    def under(frame: inspect.FrameInfo, paths: list[Path]) -> bool:
        return any(path in Path(frame.filename).resolve().parents for path in paths)

    # Real files only: not generated code ("<string>"), not compiled (Cython's .pyx)
    files = [f for f in frames if Path(f.filename).is_file() and not under(f, [hpsearch])]
    theirs = [f for f in files if not under(f, installed)] or files  # else NumPy's, say
    place = f" at {theirs[-1].filename}:{theirs[-1].lineno}" if theirs else ""
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
