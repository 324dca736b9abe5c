"""optuna-dashboard against a real database: its JSON API, and the page in Chromium."""

import dataclasses
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.speed import browser
from hpsearch import spec as spec_module
from hpsearch.search.rounds import next_round, save_notes
from hpsearch.search.runner import run
from hpsearch.spec import with_overrides
from tests.support import TINY, tiny_spec

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = browser.FLAGS  # the bench's (bench/speed/browser.py): one list


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


LOSS_ENTRY = """
def objective(config, report, data, rng):
    loss = (config["lr"] - 0.1) ** 2
    report(1, loss)
    return loss
"""

# Each kind of study, and what the dashboard must call its values, which way.
OBJECTIVES = {
    "mnist lr search 7f3a": (["val_accuracy"], ["maximize"]),
    "entry loss": (["val_rmse"], ["minimize"]),
    "net two objectives": (["val_accuracy", "n_params"], ["maximize", "minimize"]),
}


def other_kinds_of_study(folder, storage: str) -> None:
    """A python entry minimizing its own loss, and a network study of two objectives."""
    (folder / "dash_loss_entry.py").write_text(LOSS_ENTRY)
    entry = spec_module.loads(
        'name = "entry loss"\n[model]\nkind = "python"\nentry = "dash_loss_entry:objective"\n'
        "[training]\nepochs = 1\n[search]\nn_trials = 4\n"
        'objectives = [{ name = "val_rmse", direction = "minimize" }]\n'
        "[search.params.lr]\nlow = 1e-3\nhigh = 1.0\nlog = true\n"
    )
    run(dataclasses.replace(with_overrides(entry, storage=storage), code=(str(folder),)))
    text = TINY.format(n_trials=4, sampler="tpe", pruner="none").replace(
        'pruner = "none"', 'objectives = ["val_accuracy", "n_params"]'
    )
    run(with_overrides(spec_module.loads(text), name="net two objectives", storage=storage))


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """A study with a narrowing note, and studies of other objectives, served by
    `hpsearch dashboard` on a free port."""
    folder = tmp_path_factory.mktemp("dashboard")
    spec = with_overrides(tiny_spec(folder, n_trials=12), name="mnist lr search 7f3a")
    run(spec)
    following = next_round(spec.name, spec.storage)
    assert save_notes(spec.storage, following.narrowing, spec.name, following.spec.name)
    other_kinds_of_study(folder, spec.storage)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpsearch.cli",
            "dashboard",
            "--storage",
            spec.storage,
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            get_json(f"{base}/api/meta")
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                pytest.fail(f"dashboard did not start: {server.communicate()[1]}")
            time.sleep(0.3)
    yield base, spec, folder
    server.terminate()
    server.wait(timeout=10)


def test_dashboard_api_shows_the_study_its_trials_and_the_note(dashboard):
    base, spec, _ = dashboard
    summaries = get_json(f"{base}/api/studies")["study_summaries"]
    ours = [s for s in summaries if s["study_name"] == spec.name]
    assert len(ours) == 1
    detail = get_json(f"{base}/api/studies/{ours[0]['study_id']}")
    assert len(detail["trials"]) == 12
    assert detail["objective_names"] == ["val_accuracy"]  # not "Objective 0"
    assert {p["name"] for p in detail["intersection_search_space"]} >= {"lr", "weight_decay"}
    assert (
        "Range narrowing: mnist lr search 7f3a -> mnist lr search 7f3a-r2"
        in (detail["note"]["body"])
    )
    assert "| lr | log |" in detail["note"]["body"]


def test_dashboard_api_names_each_studys_objectives_and_directions(dashboard):
    base, _, _ = dashboard
    summaries = {s["study_name"]: s for s in get_json(f"{base}/api/studies")["study_summaries"]}
    for name, (names, directions) in OBJECTIVES.items():
        assert summaries[name]["directions"] == directions, name
        detail = get_json(f"{base}/api/studies/{summaries[name]['study_id']}")
        assert detail["objective_names"] == names, name


def test_dashboard_page_in_headless_chromium_names_the_study(dashboard):
    chromium = browser.chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    base, spec, folder = dashboard
    study_id = next(
        s["study_id"]
        for s in get_json(f"{base}/api/studies")["study_summaries"]
        if s["study_name"] == spec.name
    )
    url = f"{base}/dashboard/studies/{study_id}"
    common = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={folder / 'chrome'}",
        "--virtual-time-budget=20000",
    ]
    screenshot = folder / "dashboard.png"
    subprocess.run(
        [*common, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True
    )
    assert screenshot.stat().st_size > 10_000
    dom = subprocess.run(
        [*common, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    body = dom[dom.find("<body") :]
    text = re.sub(r"<[^>]+>", " ", body)  # the rendered page's text, not its markup
    assert f"{spec.name} (id={study_id})" in text  # the page header the screenshot shows
