"""The README's speed block is the rendering of a bench results file in the repository,
the newest one that suffices: its figures cannot drift from a measured run."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import readme_blocks  # noqa: E402
from benchkit import readme, record  # noqa: E402


def _tracked(folder: Path) -> list[Path] | None:
    """The files git tracks in `folder`, or None outside a git work tree."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", "--", str(folder)], cwd=ROOT, capture_output=True
        )
    except OSError:
        return None
    if done.returncode != 0:
        return None
    return [ROOT / name for name in done.stdout.decode().split("\0") if name]


def _named() -> tuple[str, Path]:
    block = readme_blocks.read_block((ROOT / "README.md").read_text(), readme.BLOCK)
    named = readme_blocks.named_results(block)
    assert named, "the README's speed block names no results file"
    return block, ROOT / named


def test_the_readme_speed_block_is_the_rendering_of_the_results_file_it_names():
    block, source = _named()
    assert source.is_file(), f"the README's speed block names {source}, which is not there"
    tracked = _tracked(source.parent)
    if tracked is not None:
        assert source in tracked, f"{source.name} is not committed: git add it with the README"
    results = record.load(source)
    if results["commit"] == "unknown":
        pytest.skip(f"{source.name} recorded no commit and git history cannot tell it")
    assert readme.render_speed(results, source) == block, (
        f"the README's speed block differs from {source.name}: "
        f"python scripts/bench.py --render {source.relative_to(ROOT)}"
    )


def test_the_readme_speed_block_names_the_newest_results_file_that_suffices():
    _, source = _named()
    tracked = _tracked(source.parent)
    if tracked is None:
        pytest.skip("not a git work tree")
    newest = record.newest([p for p in tracked if p.name.startswith("bench-")])
    assert newest == source, (
        f"the README's speed block renders {source.name}, but {newest.name} is newer: "
        f"python scripts/bench.py --render {newest.relative_to(ROOT)}"
    )
