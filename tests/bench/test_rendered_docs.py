"""docs/benchmarks.md and docs/search-quality.md are the renderings of the newest results
file of their kind in bench/results, and bench/results keeps nothing else: the figures the
docs show cannot drift from a measured run, and a new run replaces the old one."""

import json
import subprocess
from pathlib import Path

from bench import DOCS, RESULTS, ROOT, newest
from bench.search import page as search_page
from bench.search import publish, summary
from bench.speed import page as speed_page
from bench.speed import record


def tracked(folder: Path, pattern: str) -> list[Path]:
    """The files under `folder` matching `pattern` that git tracks (what a clone holds),
    or every matching file outside a git work tree."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", "--", str(folder / pattern)], cwd=ROOT, capture_output=True
        )
    except OSError:
        done = None
    if done is None or done.returncode != 0:
        return sorted(p for p in folder.rglob(pattern) if p.is_file())
    return sorted(ROOT / name for name in done.stdout.decode().split("\0") if name)


def test_docs_benchmarks_is_the_rendering_of_the_newest_speed_results():
    source = record.newest_sufficient(tracked(RESULTS, record.PATTERN))
    assert source is not None, f"no committed {record.PATTERN} in bench/results suffices"
    results = record.load(source)
    rendered = speed_page.page(results, source)
    again = f"python -m bench speed --render {source.relative_to(ROOT)}"
    assert (DOCS / "benchmarks.md").read_text() == rendered, f"docs/benchmarks.md differs: {again}"
    # The page names what was measured, when and where.
    assert f"at commit {results['commit']}" in rendered
    assert f"on {results['date'][:10]} at {results['date'][11:16]} UTC" in rendered
    assert f"(results: {source.relative_to(ROOT)})" in rendered
    assert "(search-quality.md)" in rendered  # and links to the other benchmark's page


def test_docs_search_quality_is_the_rendering_of_the_newest_search_results():
    source = publish.newest_results(publish.OUT)
    assert source is not None and source in tracked(publish.OUT, publish.PATTERN), (
        f"the newest {publish.PATTERN} in {publish.OUT.relative_to(ROOT)} is not committed"
    )
    results = summary.derived(json.loads(source.read_text()))
    rendered = search_page.page(results, "search-quality.png", source)
    again = f"python -m bench search --render {source.relative_to(ROOT)}"
    assert publish.DOC.read_text() == rendered, f"docs/search-quality.md differs: {again}"
    assert (DOCS / "search-quality.png").is_file()
    assert f"(commit {results['commit']}," in rendered
    assert f"`{source.relative_to(ROOT)}`" in rendered
    summary_table = rendered.split("## Summary")[1].split("## Oracles")[0]
    for task in results["oracles"]:
        assert f"\n| {task} | " in summary_table, f"{task}: no row against its oracle"


def test_bench_results_keeps_only_the_newest_of_each_kind():
    """What the docs are rendered from (with the search's figure), each task's oracle,
    which the next `make bench-search` reuses instead of searching it again, and the
    newest development-seed comparison the search page cites."""
    search = publish.newest_results(publish.OUT)
    kept = {record.newest_sufficient(tracked(RESULTS, record.PATTERN)), search}
    kept |= {search.with_suffix(".png"), *tracked(publish.OUT, "oracle-*.json")}
    development = tracked(RESULTS / "search-quality-dev", "*.json")
    kept |= {max(development)} if development else set()
    extra = set(tracked(RESULTS, "*")) - kept
    assert not extra, "git rm what the docs are not rendered from: " + ", ".join(
        sorted(str(p.relative_to(ROOT)) for p in extra)
    )


def test_the_newest_results_file_is_the_latest_stamp_that_suffices(tmp_path):
    measured = record.load(record.newest_sufficient())
    files = {
        "bench-20250101T000000Z.json": measured,
        "bench-20260101T000000Z.json": measured,
        "bench-20270101T000000Z.json": measured | {"settings": {"quick": True}},
        "bench-20280101T000000Z.json": measured | {"figures": {"worker_scaling": 1.0}},
        "bench-newer-than-all.json": measured,  # no stamp: not a results file
    }
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content))
    paths = sorted(tmp_path.glob(record.PATTERN))
    assert record.newest_sufficient(paths) == tmp_path / "bench-20260101T000000Z.json"
    assert newest.newest(paths) == tmp_path / "bench-20280101T000000Z.json"
    for name in ("search-quality-20261203T223435Z.json", "search-quality-20261203T223451Z.json"):
        (tmp_path / name).write_text("{}")
    assert publish.newest_results(tmp_path).name == "search-quality-20261203T223451Z.json"
    assert newest.newest([]) is None
