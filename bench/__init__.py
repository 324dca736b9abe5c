"""hpsearch's benchmarks, neither of them part of `make test`.

`python -m bench speed` (`make bench`) times the training step and the studies around it;
`python -m bench search` (`make bench-search`) measures how close search strategies come to
each task's oracle. Beside the code is their data: `tasks/` and `variants/` (the study
specs the search benchmark searches) and `results/`, which keeps the newest results of each
kind. docs/benchmarks.md and docs/search-quality.md are rendered from those results, never
written by hand, so their figures cannot drift from a measured run.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"
