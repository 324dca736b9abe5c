"""`python -m bench search` (`make bench-search`): search strategies over tasks and seeds,
each reported as its gap to the task's oracle (the best test accuracy its space allows).

One job per module: `tasks` (the task files: found, validated, keyed, and where each
task's oracle is kept), `strategies` (the catalogue of search strategies and the spec
each searches), `runs` (one run or oracle step, in a worker process), `schedule` (the
process pool: caps, oracle reuse, progress), `summary` (the table, targets and figure
from the runs), `page` (the Markdown page of a results record), `publish` (the results
files written, merged, and rendered into docs/search-quality.md), `cli` (the options).
"""
