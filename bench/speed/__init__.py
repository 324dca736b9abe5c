"""`python -m bench speed` (`make bench`): hpsearch's training step and study throughput,
measured side by side in one run, on one machine, with the targets each figure is held to.

One job per module: `workloads` (the nets and data timed), `book` (the book's network,
the baseline), `timing` (clocks and the machine's own limits), `studies` (timed runs of
the default study), `reproducible` (its reproducible search beside the free one),
`overhead` (one worker's costs, in a process of its own, timed by `trial_clock`),
`postgres` (a server for the PostgreSQL figures), `scale` and `scale_run` (the study at
scale), `browser` (a page's first plot in headless Chromium), `measure` (the sequence of
one run, as figures), `report` (the printed table and PASS/FAIL lines), `record` (the
results JSON, written and read back), `page` (docs/benchmarks.md rendered from a results
file), `cli` (the options).
"""
