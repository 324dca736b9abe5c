"""Blocks of the README rendered from results files: the text between two HTML comment
markers (`<!-- NAME:begin -->` and `<!-- NAME:end -->`), read and replaced, and the
results file a block names as "(results: PATH)". Shared by the scripts that write the
blocks and the tests that render them again and compare."""

from __future__ import annotations

import re
from pathlib import Path

_NAMED = re.compile(r"\(results: (bench/results/\S+?\.json)[);]")


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of block `name`."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def _split(text: str, name: str) -> tuple[str, str, str]:
    """The text before the block's begin marker, between its markers, after its end."""
    begin, end = markers(name)
    head, found_begin, rest = text.partition(begin)
    content, found_end, tail = rest.partition(end)
    if not (found_begin and found_end):
        raise ValueError(f"no {begin} ... {end} block")
    return head, content, tail


def read_block(text: str, name: str) -> str:
    """The block's content, without the markers and surrounding blank lines."""
    return _split(text, name)[1].strip()


def replace_block(text: str, name: str, content: str) -> str:
    """`text` with the block's content replaced by `content`."""
    head, _, tail = _split(text, name)
    begin, end = markers(name)
    return f"{head}{begin}\n{content}\n{end}{tail}"


def write_block(path: Path, name: str, content: str) -> None:
    """Replace the block `name` of the file at `path` (the README) in place."""
    path.write_text(replace_block(path.read_text(), name, content))


def named_results(content: str) -> str | None:
    """The results file (a path relative to the repository) that a block names."""
    found = _NAMED.search(content)
    return found.group(1) if found else None


def shown_path(path: Path, root: Path) -> str:
    """`path` relative to the repository `root` when inside it, else as given."""
    resolved = path.resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(path)
