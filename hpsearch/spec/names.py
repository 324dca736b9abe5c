"""File names made from study names. A study name is data that anyone who can write to
a shared database chooses: it never becomes a path of its own, only a single file name
inside the folder the command was given."""

from __future__ import annotations

import hashlib
import re

MAX_FILE_BYTES = 120  # of the name kept, before the hash: file systems stop at 255 bytes
_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")  # separators and control characters


def file_name(study_name: str) -> str:
    """`study_name` itself when it is a plain file name (no path separator or control
    character, not starting with '.', short enough), else that made safe with a hash of
    the whole name, so two names never share a file."""
    safe = _UNSAFE.sub("_", study_name).lstrip(".")
    encoded = safe.encode("utf-8", "surrogateescape")
    if len(encoded) > MAX_FILE_BYTES:
        safe = encoded[:MAX_FILE_BYTES].decode("utf-8", "ignore")
    if safe == study_name and safe:
        return safe
    digest = hashlib.sha256(study_name.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{safe or 'study'}-{digest}"
