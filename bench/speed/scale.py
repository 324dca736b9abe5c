"""The study at scale: the default study's search run for thousands of trials with a
synthetic learning curve in place of training (`scale_run`), so that everything timed
is the cost around training. Measured on it: the mean time per trial around trial 100
and over the last 100 trials, with its parts; plain Optuna's on copies of the same
study at both sizes; and what a user waits for on the finished study (`hpsearch
trials`, `trials_frame`, `curves_frame`, `hpsearch report`, and optuna-dashboard's
study page until its first plot, in headless Chromium)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench import ROOT
from bench.speed import browser
from bench.speed.scale_run import copy_database
from bench.speed.studies import STUDY

PLAIN_TRIALS = 50  # trials plain Optuna adds to each copy


def scale(trials: int, folder: Path) -> dict:
    """Every figure of the study at scale, as the results JSON keeps them."""
    database, early = folder / "scale.db", folder / "scale-early.db"
    built = _json("build", STUDY, database, trials, early)
    name = _study_name()
    url = f"sqlite:///{database}"
    figures = {
        "scale_trials": built["trials"],
        "scale_build_seconds": built["wall"],
        "scale_window": [built["early"]["first"], built["early"]["last"]],
        "scale_window_end": [built["late"]["first"], built["late"]["last"]],
    }
    for at, window in (("100", built["early"]), ("end", built["late"])):
        parts = window["parts_ms_per_trial"]
        figures[f"scale_ms_per_trial_at_{at}"] = window["ms_per_trial"]
        figures[f"scale_sampler_ms_at_{at}"] = parts["sampler"]
        # hpsearch's part: everything but the sampler's own computation (Optuna's TPE)
        figures[f"scale_ours_ms_at_{at}"] = window["ms_per_trial"] - parts["sampler"]
        figures[f"scale_parts_ms_at_{at}"] = parts
    figures["scale_growth"] = (
        figures["scale_ms_per_trial_at_end"] / figures["scale_ms_per_trial_at_100"]
    )
    figures["scale_growth_ours"] = figures["scale_ours_ms_at_end"] / figures["scale_ours_ms_at_100"]
    for at, source in (("100", early), ("end", database)):
        copy = folder / f"plain-{at}.db"
        copy_database(source, copy)
        plain = _json("plain", STUDY, copy, PLAIN_TRIALS)
        figures[f"plain_optuna_ms_per_trial_at_{at}"] = plain["ms_per_trial"]
    on_study = ["--study", name, "--storage", url]
    figures["scale_trials_cli_seconds"] = _wall(["trials", *on_study])
    figures |= _frames(url, name)
    figures["scale_report_cli_seconds"] = _wall(["report", *on_study, "--out", folder / "report"])
    figures["scale_dashboard_first_plot_seconds"] = _dashboard(url, name)
    return figures


def _json(*arguments) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.speed.scale_run", *map(str, arguments)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.speed.scale_run {arguments[0]} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _study_name() -> str:
    from hpsearch import spec

    return spec.load(STUDY).name


def _wall(arguments: list) -> float:
    """Seconds an hpsearch command takes, start-up included: what its user waits."""
    command = [sys.executable, "-m", "hpsearch.cli", *map(str, arguments)]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _frames(url: str, name: str) -> dict:
    from hpsearch.analysis.frames import curves_frame, trials_frame

    figures = {}
    for key, function in (("trials_frame", trials_frame), ("curves_frame", curves_frame)):
        start = time.perf_counter()
        rows = len(function(url, name))
        figures[f"scale_{key}_seconds"] = time.perf_counter() - start
        figures[f"scale_{key}_rows"] = rows
    return figures


def _dashboard(url: str, name: str) -> float | None:
    """`hpsearch dashboard` freshly started on the study; seconds from opening its
    study page until the first plot shows, or None without a Chromium."""
    if browser.chromium() is None:
        return None
    port = browser.free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "hpsearch.cli", "dashboard", "--storage", url, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        studies = browser.wait(lambda: _get(f"{base}/api/studies"), 60, "the dashboard")
        study_id = next(
            s["study_id"] for s in studies["study_summaries"] if s["study_name"] == name
        )
        return browser.seconds_until(f"{base}/dashboard/studies/{study_id}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None
