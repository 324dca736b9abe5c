"""What `make bench` prints: the table of one run's figures and the targets it is
held to, each with its measured value and PASS or FAIL."""

from __future__ import annotations

import numpy as np

from bench.speed import reproducible
from bench.speed.measure import Measured
from bench.speed.record import cpu_name
from bench.speed.scale import PLAIN_TRIALS
from bench.speed.trial_clock import PART_LABELS

Target = tuple[str, bool]


def print_figures(measured: Measured) -> None:
    """The table: step times, share of GEMM peak, study throughput and overheads."""
    figures, trials = measured.figures, measured.trials
    alone, one, two, free = measured.alone, measured.one, measured.two, measured.free
    ratios = measured.ratios
    share, rss = figures["optuna_sqlite_overhead_share"], figures["worker_peak_rss_mb"]

    print(f"CPU: {cpu_name()}; numpy {np.__version__}; one BLAS thread")
    print(f"float32 GEMM peak, one thread: {figures['gemm_peak_gflops']:.1f} GFLOP/s")
    print(f"{'step (784-[100]x6-10, SGD + wd)':<34} {'batch 100':>10} {'batch 500':>10}")
    for label, key in [
        ("hpsearch float32 (ms)", "hpsearch_ms"),
        ("PyTorch CPU float32 (ms)", "torch_ms"),
        ("book-style float64 (ms)", "book_f64_ms"),
    ]:
        cells = [figures[f"{key}_b{b}"] for b in (100, 500)]
        print(
            f"{label:<34} " + " ".join("       n/a" if c is None else f"{c:>10.3f}" for c in cells)
        )
    print(
        f"{'share of GEMM peak':<34} {figures['gemm_fraction_b100']:>10.0%} "
        f"{figures['gemm_fraction_b500']:>10.0%}"
    )
    print(
        f"default study, {trials} trials: 1 worker {alone.per_minute:.0f} trials/min "
        f"({alone.epochs} epochs); its configurations replayed by 1 worker "
        f"{one.per_minute:.0f} trials/min ({one.epochs} epochs, "
        f"{one.epochs_per_minute:.0f}/min) and by 2 workers {two.per_minute:.0f} "
        f"trials/min ({two.epochs} epochs, "
        f"{two.epochs_per_minute:.0f}/min): x{figures['worker_scaling']:.2f} trials, "
        f"x{figures['worker_scaling_epochs']:.2f} epochs (median of {len(ratios)} pairs: "
        + ", ".join(f"x{r:.2f}" for r in ratios)
        + ")"
    )
    print(
        f"  outside the trials: {one.to_first_trial * 1e3:.0f} ms to the first trial and "
        f"{one.after_last_trial * 1e3:.0f} ms after the last with 1 worker, "
        f"{two.to_first_trial * 1e3:.0f} and {two.after_last_trial * 1e3:.0f} ms with 2, "
        f"one of which waited {two.idle_at_end * 1e3:.0f} ms for the other's last trial "
        f"(runs of {one.seconds:.1f} s and {two.seconds:.1f} s)"
    )
    print(
        "the machine itself, now: 2 processes doing only training steps "
        f"x{figures['hardware_scaling_steps']:.2f} the steps/s of 1"
    )
    print(
        f"2 workers searching freely: {free.per_minute:.0f} trials/min ({free.epochs} epochs, "
        f"{free.epochs_per_minute:.0f}/min): x{figures['worker_scaling_free']:.2f} the free "
        f"1-worker run's trials/min, x{figures['worker_scaling_free_epochs']:.2f} its epochs/min"
    )
    if "reproducible_scaling" in figures:
        print("\n".join(reproducible.lines(figures)))
    print(
        f"1 worker, everything but training: {figures['non_training_share']:.1%} of its "
        f"trial loop, {figures['non_training_ms_per_trial']:.1f} ms per trial (Optuna + "
        f"SQLite outside the objective alone: {share:.1%}, "
        f"{figures['optuna_sqlite_overhead_ms_per_trial']:.1f} ms); opening and closing the "
        f"study: {figures['opening_and_other_ms']:.0f} ms once"
    )
    _print_parts(figures, "")
    if "postgres_non_training_share" in figures:
        print(
            "1 worker on PostgreSQL (.ci/postgres), everything but training: "
            f"{figures['postgres_non_training_share']:.1%} of its trial loop, "
            f"{figures['postgres_non_training_ms_per_trial']:.1f} ms per trial"
        )
        _print_parts(figures, "postgres_")
    print(f"peak RSS of one worker: {rss:.0f} MB")
    print_scale(figures)


def _print_parts(figures: dict, prefix: str) -> None:
    for part, label in PART_LABELS.items():
        print(
            f"  {label:<46} {figures[f'{prefix}part_{part}_share']:>6.1%} "
            f"{figures[f'{prefix}part_{part}_ms_per_trial']:>7.1f} ms/trial"
        )


def print_scale(f: dict) -> None:
    """The study at scale: cost per trial near trial 100 and at the end, its parts,
    plain Optuna's beside it, and what a user waits for on the finished study."""
    early, late = f["scale_window"], f["scale_window_end"]
    print(
        f"study at scale: {f['scale_trials']} trials of the default study's search with a "
        f"synthetic learning curve in place of training, built in {f['scale_build_seconds']:.0f} s"
    )
    print(
        f"  mean time per trial, trials {early[0] + 1}-{early[1]}: "
        f"{f['scale_ms_per_trial_at_100']:.1f} ms; trials {late[0] + 1}-{late[1]}: "
        f"{f['scale_ms_per_trial_at_end']:.1f} ms (x{f['scale_growth']:.2f})"
    )
    print(
        f"  of which Optuna's sampler computing (TPE): {f['scale_sampler_ms_at_100']:.1f} and "
        f"{f['scale_sampler_ms_at_end']:.1f} ms; the rest: {f['scale_ours_ms_at_100']:.1f} and "
        f"{f['scale_ours_ms_at_end']:.1f} ms (x{f['scale_growth_ours']:.2f})"
    )
    for part, label in PART_LABELS.items():
        if part != "training":
            print(
                f"    {label:<46} {f['scale_parts_ms_at_100'][part]:>7.2f} "
                f"{f['scale_parts_ms_at_end'][part]:>7.2f} ms/trial"
            )
    print(
        f"  plain Optuna (its RDBStorage, the same sampler and median pruner), "
        f"{PLAIN_TRIALS} trials added to copies of the study at both sizes: "
        f"{f['plain_optuna_ms_per_trial_at_100']:.1f} and "
        f"{f['plain_optuna_ms_per_trial_at_end']:.1f} ms per trial"
    )
    dashboard = f["scale_dashboard_first_plot_seconds"]
    print(
        f"  on the {f['scale_trials']}-trial study: hpsearch trials "
        f"{f['scale_trials_cli_seconds']:.1f} s, trials_frame {f['scale_trials_frame_seconds']:.1f}"
        f" s, curves_frame {f['scale_curves_frame_seconds']:.1f} s, hpsearch report "
        f"{f['scale_report_cli_seconds']:.1f} s, the dashboard's study page to its first plot "
        + ("n/a (no chromium)" if dashboard is None else f"{dashboard:.1f} s")
    )


def targets(figures: dict) -> list[Target]:
    """Each target as (text with the measured value, passed); PyTorch's two
    only when PyTorch was measured."""
    rss = figures["worker_peak_rss_mb"]
    lines: list[Target] = []
    torch_b100, torch_b500 = figures.get("ratio_vs_torch_b100"), figures.get("ratio_vs_torch_b500")
    if torch_b100 is not None:
        lines.append(
            (f"step <= 0.85 x PyTorch at batch 100: {torch_b100:.2f} x", torch_b100 <= 0.85)
        )
        lines.append((f"step <= 1.0 x PyTorch at batch 500: {torch_b500:.2f} x", torch_b500 <= 1.0))
    lines += [
        (
            f">= 70% of GEMM peak at batch 100: {figures['gemm_fraction_b100']:.0%}",
            figures["gemm_fraction_b100"] >= 0.70,
        ),
        (
            f">= 80% of GEMM peak at batch 500: {figures['gemm_fraction_b500']:.0%}",
            figures["gemm_fraction_b500"] >= 0.80,
        ),
        (
            f">= 2.5 x faster than book-style float64 at batch 100: "
            f"{figures['speedup_vs_book_b100']:.2f} x",
            figures["speedup_vs_book_b100"] >= 2.5,
        ),
        (
            f"2 workers >= 1.8 x trials/min of 1 (same configurations): "
            f"{figures['worker_scaling']:.2f} x",
            figures["worker_scaling"] >= 1.8,
        ),
        (
            f"2 workers searching freely >= 1.85 x epochs/min of 1: "
            f"{figures['worker_scaling_free_epochs']:.2f} x",
            figures["worker_scaling_free_epochs"] >= 1.85,
        ),
        *reproducible.targets(figures),
        (
            f"1 worker, SQLite: everything but training <= 5% of the trial loop: "
            f"{figures['non_training_share']:.1%}",
            figures["non_training_share"] <= 0.05,
        ),
        (f"worker peak RSS <= 400 MB: {rss:.0f} MB", rss <= 400),
    ]
    if "postgres_non_training_share" in figures:
        share = figures["postgres_non_training_share"]
        lines.append(
            (f"1 worker, PostgreSQL: everything but training <= 10%: {share:.1%}", share <= 0.10)
        )
    return lines + scale_targets(figures)


def scale_targets(f: dict) -> list[Target]:
    n, growth = f["scale_trials"], f["scale_growth_ours"]
    lines = [
        (
            f"study at scale: time per trial at trial {n} <= 1.5 x at trial 100, all but "
            f"Optuna's sampler computing: {growth:.2f} x",
            growth <= 1.5,
        ),
        (
            f"study at scale: the same, everything included: {f['scale_growth']:.2f} x",
            f["scale_growth"] <= 1.5,
        ),
    ]
    for key, label, limit in (
        ("scale_trials_cli_seconds", "hpsearch trials", 3),
        ("scale_trials_frame_seconds", "trials_frame", 3),
        ("scale_curves_frame_seconds", "curves_frame", 3),
        ("scale_report_cli_seconds", "hpsearch report", 15),
        ("scale_dashboard_first_plot_seconds", "the dashboard's first plot", 10),
    ):
        if f[key] is not None:
            lines.append((f"{n} trials: {label} <= {limit} s: {f[key]:.1f} s", f[key] <= limit))
    return lines


def print_targets(figures: dict, lines: list[Target]) -> None:
    if figures.get("ratio_vs_torch_b100") is None:
        print("PyTorch not installed (pip install torch==2.13.0): its targets are not measured")
    print_target_lines(lines)


def print_target_lines(lines: list[Target]) -> None:
    for text, ok in lines:
        print(f"{text} ... {'PASS' if ok else 'FAIL'}")
