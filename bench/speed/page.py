"""docs/benchmarks.md, rendered from one `make bench` results file: the page names the
file, the commit and the date measured, and every figure on it comes from the file.
tests/bench/test_rendered_docs.py renders it again from the newest results file and
compares, so the page cannot drift from a measured run."""

from __future__ import annotations

from pathlib import Path

from bench import DOCS, newest
from bench.speed import reproducible
from bench.speed.scale import PLAIN_TRIALS
from bench.speed.scale_run import WINDOW
from bench.speed.trial_clock import PART_LABELS

DOC = DOCS / "benchmarks.md"


def _net(sizes: list[int]) -> str:
    hidden = sizes[1:-1]
    if hidden and len(set(hidden)) == 1:
        return f"{sizes[0]}-[{hidden[0]}]x{len(hidden)}-{sizes[-1]}"
    return "-".join(str(s) for s in sizes)


def _provenance(record: dict) -> str:
    commit = f"commit {record['commit']}"
    if record.get("uncommitted_changes"):
        return f"{commit} with uncommitted changes to the code"
    return commit


def _libraries(record: dict) -> str:
    blas = dict.fromkeys(
        f"{b['internal_api']} {b['version']}" for b in record.get("blas", []) if b.get("version")
    )
    parts = [f"Python {record['python']}", f"NumPy {record['numpy']}"]
    parts += [f"PyTorch {record['torch']}"] if record.get("torch") else ["no PyTorch"]
    parts += [f"Optuna {record['optuna']}", *blas]
    return ", ".join(parts)


def _step_row(label: str, figures: dict, key: str, ratio) -> str:
    cells = []
    for batch in (100, 500):
        ms = figures.get(f"{key}_b{batch}")
        cells.append("n/a" if ms is None else f"{ms:.2f} ms{ratio(batch)}")
    return f"| {label} | {cells[0]} | {cells[1]} |"


def figures_section(record: dict, source: Path) -> str:
    """The measured figures of `record` (as `record.load` returns it), read from `source`,
    as Markdown: where and when they were measured, the tables and the targets."""
    f, settings = record["figures"], record["settings"]
    targets = record["targets"]
    passed = sum(t["pass"] for t in targets)
    quick = " (a --quick run)" if settings.get("quick") else ""
    pairs = f["worker_scaling_pairs"]

    def vs_torch(batch: int) -> str:
        ratio = f.get(f"ratio_vs_torch_b{batch}")
        return "" if ratio is None else f" (hpsearch {ratio:.2f} x)"

    def vs_book(batch: int) -> str:
        return f" (hpsearch {f[f'speedup_vs_book_b{batch}']:.2f} x faster)"

    gemm_ms = f["gemm_fraction_b100"] * f["hpsearch_ms_b100"]
    lines = [
        f"Measured by `make bench`{quick} on {record['date'][:10]} at {record['date'][11:16]} UTC "
        f"(results: {newest.shown(source)}) at {_provenance(record)}, on {record['cpu']} "
        f"with {_libraries(record)}. "
        f"Steps are the median of {settings['steps']} timed ones on real MNIST batches, one "
        f"BLAS thread; the study is the default one with {settings['trials']} trials. "
        f"{passed} of {len(targets)} targets PASS.",
        "",
        f"| step of the {_net(settings['net'])} net, SGD + weight decay | batch 100 | batch 500 |",
        "|---|---|---|",
        _step_row("hpsearch, float32", f, "hpsearch_ms", lambda batch: ""),
        _step_row("PyTorch CPU, float32", f, "torch_ms", vs_torch),
        _step_row("book-style, float64", f, "book_f64_ms", vs_book),
        f"| share of the float32 GEMM peak ({f['gemm_peak_gflops']:.1f} GFLOP/s, one thread) "
        f"| {f['gemm_fraction_b100']:.0%} | {f['gemm_fraction_b500']:.0%} |",
        "",
        f"At that peak, the batch-100 step's GEMMs would take {gemm_ms:.2f} ms of its "
        f"{f['hpsearch_ms_b100']:.2f} ms.",
        "",
        f"| default study, {settings['trials']} trials | |",
        "|---|---|",
        f"| 2 workers against 1, the same configurations replayed | **x{f['worker_scaling']:.2f}** "
        f"trials/min ({f['trials_per_min_1_worker']:.0f} and "
        f"{f['trials_per_min_2_workers']:.0f}; median of {len(pairs)} pairs: "
        + ", ".join(f"x{r:.2f}" for r in pairs)
        + f"), x{f['worker_scaling_epochs']:.2f} epochs/min |",
        f"| 1 and 2 workers searching freely | {f['trials_per_min_1_worker_free']:.0f} and "
        f"{f['trials_per_min_2_workers_free']:.0f} trials/min: x{f['worker_scaling_free']:.2f}"
        + (
            f"; x{f['worker_scaling_free_epochs']:.2f} epochs/min |"
            if "worker_scaling_free_epochs" in f
            else " |"
        ),
        *reproducible.page_rows(f),
        f"| 2 processes doing only training steps, same run | "
        f"x{f['hardware_scaling_steps']:.2f} the steps/s of 1 |",
        f"| outside the trials (the median pair) | {f['to_first_trial_ms_1_worker']:.0f} ms to "
        f"the first trial and {f['after_last_trial_ms_1_worker']:.0f} ms after the last with 1 "
        f"worker, {f['to_first_trial_ms_2_workers']:.0f} and "
        f"{f['after_last_trial_ms_2_workers']:.0f} ms with 2, one of which waited "
        f"{f['idle_at_end_ms_2_workers']:.0f} ms for the other's last trial |",
        f"| Optuna + SQLite outside the objective, 1 worker | "
        f"{f['optuna_sqlite_overhead_share']:.1%} of a trial's wall time, "
        f"{f['optuna_sqlite_overhead_ms_per_trial']:.1f} ms per trial |",
        *_non_training_rows(f),
        *_non_training_rows(f, "postgres_", "PostgreSQL"),
        f"| peak RSS of one worker | {f['worker_peak_rss_mb']:.0f} MB |",
        "",
        *_scale_rows(f),
        "The targets, as the run printed them:",
        "",
        "```",
        *(f"{t['target']} ... {'PASS' if t['pass'] else 'FAIL'}" for t in targets),
        "```",
    ]
    return "\n".join(lines)


def _non_training_rows(f: dict, prefix: str = "", database: str = "SQLite") -> list[str]:
    """The non-training share and, from runs that timed them (`trial_clock`),
    its parts; older runs measured it per trial, without parts, and on SQLite only."""
    if f"{prefix}non_training_share" not in f:
        return []
    if f"{prefix}part_sampler_share" not in f:
        return [
            f"| everything but training, 1 worker | {f['non_training_share']:.1%} of a trial's "
            f"wall time, {f['non_training_ms_per_trial']:.1f} ms per trial; opening the study "
            f"and the worker loop {f['opening_and_other_ms']:.0f} ms in all |"
        ]
    parts = "; ".join(
        f"{label} {f[f'{prefix}part_{part}_share']:.1%} "
        f"({f[f'{prefix}part_{part}_ms_per_trial']:.1f} ms)"
        for part, label in PART_LABELS.items()
        if part != "training"
    )
    return [
        f"| everything but training, 1 worker, {database} | "
        f"**{f[f'{prefix}non_training_share']:.1%}** of the worker's trial loop, "
        f"{f[f'{prefix}non_training_ms_per_trial']:.1f} ms per trial (an upper bound: the "
        f"clock's own cost is in it); opening and closing the study "
        f"{f[f'{prefix}opening_and_other_ms']:.0f} ms once |",
        f"| its parts, per trial | {parts} |",
    ]


def _scale_rows(f: dict) -> list[str]:
    """The study at scale, from runs that built one."""
    if "scale_trials" not in f:
        return []
    n, (start, end), (first, last) = f["scale_trials"], f["scale_window"], f["scale_window_end"]
    dashboard = f["scale_dashboard_first_plot_seconds"]
    first_plot = "n/a (no chromium)" if dashboard is None else f"{dashboard:.1f} s"
    return [
        f"| study at scale: the default study's search, {n} trials, a synthetic learning "
        f"curve in place of training (built in {f['scale_build_seconds']:.0f} s) | "
        f"trials {start + 1}-{end} | trials {first + 1}-{last} |",
        "|---|---|---|",
        f"| mean time per trial | {f['scale_ms_per_trial_at_100']:.1f} ms | "
        f"{f['scale_ms_per_trial_at_end']:.1f} ms (x{f['scale_growth']:.2f}) |",
        f"| of which Optuna's sampler computing (TPE, through Optuna's trial cache) | "
        f"{f['scale_sampler_ms_at_100']:.1f} ms | {f['scale_sampler_ms_at_end']:.1f} ms |",
        f"| the rest: storage, pruner, budget, objective, Optuna's loop | "
        f"{f['scale_ours_ms_at_100']:.1f} ms | {f['scale_ours_ms_at_end']:.1f} ms "
        f"(x{f['scale_growth_ours']:.2f}) |",
        f"| plain Optuna: its RDBStorage, the same sampler and median pruner "
        f"({PLAIN_TRIALS} trials added to a copy) | "
        f"{f['plain_optuna_ms_per_trial_at_100']:.1f} ms | "
        f"{f['plain_optuna_ms_per_trial_at_end']:.1f} ms |",
        "",
        f"On the {n}-trial study: `hpsearch trials` {f['scale_trials_cli_seconds']:.1f} s, "
        f"`trials_frame` {f['scale_trials_frame_seconds']:.1f} s, `curves_frame` "
        f"{f['scale_curves_frame_seconds']:.1f} s, `hpsearch report` "
        f"{f['scale_report_cli_seconds']:.1f} s (commands timed with their start-up), and "
        f"optuna-dashboard's study page, served by `hpsearch dashboard` and opened in headless "
        f"Chromium, shows its first plot after {first_plot}.",
        "",
    ]


def page(record: dict, source: Path) -> str:
    """The whole of docs/benchmarks.md for `record`, read from the results file `source`:
    what the benchmarks are, what `make bench` measures and how to run it, then the
    figures."""
    settings = record["settings"]
    return f"""# Benchmarks

<!-- Rendered by `python -m bench speed --render` from the results file named below:
edit bench/speed/page.py or measure again, not this file. -->

hpsearch has two benchmarks, neither of them part of `make test`:

- **speed** (`make bench`, this page): the training step and the studies around it;
- **search quality** (`make bench-search`): search strategies on several tasks, each
  against the best test accuracy the task's search space allows. Its page is
  [search-quality.md](search-quality.md).

Both write their results to bench/results/, which keeps the newest results of each kind.
Each page is rendered from the newest, and `tests/bench/test_rendered_docs.py` fails when
a page is not the rendering of it.

## Speed (`make bench`)

`make bench` installs the bench extra (PyTorch's CPU build, psycopg, websocket-client) and
measures, side by side in one run:

- **the training step** of the {_net(settings["net"])} ReLU net (SGD with weight decay,
  float32, one BLAS thread, the median of many timed steps on real MNIST batches), against
  the same net in PyTorch and against a book-style float64 implementation, and as a share
  of the machine's float32 GEMM peak (FLOPs counted as the matrix products the net calls,
  `bench.speed.workloads.step_flops`, which `tests/bench/test_bench_accounting.py` checks
  against them);
- **study throughput**: the default study with 1 and 2 workers, replaying the same
  configurations, searching freely, and searching reproducibly (`search.reproducible`);
- **one worker's trial loop, split into parts** (`bench.speed.trial_clock`: everything but
  training, and where it goes) on SQLite and on PostgreSQL (a throwaway server from
  `.ci/postgres`, or the one `HPSEARCH_BENCH_POSTGRES_URL` names), and its peak memory;
- **the study at scale** (`bench.speed.scale`): the default study's search run for
  thousands of trials with a synthetic learning curve in place of training (hpsearch's
  objective with only `Objective.train` replaced, so suggest, budget, reports, pruning,
  curves and attrs all run), timed per trial over a window of {WINDOW} trials early on
  and over the last {WINDOW}, with the same parts, beside plain Optuna (its own
  `RDBStorage`, the same sampler and median pruner) on copies of the study at both sizes.
  On the finished study it times `hpsearch trials`, `trials_frame`, `curves_frame`,
  `hpsearch report`, and optuna-dashboard's study page (`hpsearch dashboard`, opened in
  headless Chromium over the DevTools protocol) until its first plot shows. Building
  this study is most of the run's time.

Every target is printed with its measured value and PASS or FAIL, and the figures are
written to bench/results/bench-STAMP.json with the CPU, the library versions, the run's
settings, and the commit and date of the code measured.

| command | what it does |
|---|---|
| `make bench` | measure, write the results file, render this page from it |
| `make bench ARGS="--quick"` | fewer steps and trials; the page is not rendered from it |
| `make bench ARGS="--scale-trials 2000"` | a smaller study at scale (`--help` lists every option) |
| `python -m bench speed --reproducible-only` | only the reproducible search against the free one |
| `python -m bench speed --render [RESULTS]` | no runs: render this page from a results \
file (the newest that suffices when none is named) |

After a run, commit its results file with this page and `git rm` the one it replaces.

## Measured

{figures_section(record, source)}
"""


def write(record: dict, source: Path, doc: Path = DOC) -> None:
    """Render docs/benchmarks.md (or `doc`) from `record`, read from `source`."""
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(page(record, source))
