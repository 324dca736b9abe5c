"""`make bench-search`: search strategies over tasks and seeds, against an oracle per task.

One job per module: `tasks` (the task files: found, validated, keyed, and where each
task's oracle is kept), `strategies` (the catalogue of search strategies and the spec
each searches), `runs` (one run or oracle step, in a worker process), `schedule` (the
process pool: caps, oracle reuse, progress), `summary` (the table, targets and figure
from the runs), `report` (the Markdown page and the README's block), `publish` (the
results files written, merged, and rendered into docs/ and the README).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
