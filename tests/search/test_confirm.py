"""The confirm stage: the leaders of a search evaluated again before the choice. A
configuration that led by one lucky evaluation is not chosen over one with a higher
true mean; the race drops what is clearly behind; re-evaluations survive a worker
SIGKILLed in the middle of one (queued again, run once, nothing left RUNNING)."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from hpsearch import records
from hpsearch import spec as specs
from hpsearch.cli import main
from hpsearch.records import VAL_SCORE
from hpsearch.search.confirm import Spending, stage
from hpsearch.search.runner import run
from hpsearch.trials.entry import trusted
from tests.support import HEARTBEAT, hpsearch, trials, wait_for

# Scores are noise around a known mean: one arm is truly better, three are worse, and
# every configuration (x picks the draw) has luck of its own.
LUCKY = """
MEANS = {"high": 0.80, "low": 0.72, "lower": 0.72, "lowest": 0.72}


def objective(config, report, data, rng):
    value = MEANS[config["arm"]] + 0.08 * rng.standard_normal(1 + int(config["x"] * 50))[-1]
    report(1, value)
    return value
"""

LUCKY_SPEC = """
name = "lucky"
seed = 4
[model]
kind = "python"
entry = "{module}:objective"
[training]
epochs = 1
[search]
n_trials = 30
sampler = "random"
pruner = "none"
[search.confirm]
top_k = 3
max_repeats = 3
share = 0.3
[search.params.arm]
choices = ["high", "low", "lower", "lowest"]
[search.params.x]
low = 0.0
high = 1.0
"""


def test_a_configuration_that_led_by_one_lucky_evaluation_is_not_chosen(tmp_path, request, capsys):
    module = "lucky_" + request.node.name[-12:].replace("[", "_").replace("]", "_")
    (tmp_path / f"{module}.py").write_text(LUCKY)
    path = tmp_path / "lucky.toml"
    path.write_text(LUCKY_SPEC.format(module=module))
    db = f"sqlite:///{tmp_path / 'l.db'}"
    spec = specs.with_overrides(specs.load(path), storage=db)
    study = run(dataclasses.replace(spec, code=trusted([tmp_path]))).study
    every = study.get_trials(deepcopy=False)
    objectives = records.objectives_of(study)
    searched = [t for t in every if not records.is_confirmation(t)]
    assert len(searched) == 21  # 30 trials, 9 of them kept for the confirm stage

    # The search's single best value is a worse arm's lucky draw ...
    luckiest = records.ranked(searched, objectives)[0]
    assert luckiest.params["arm"] != "high"
    # ... which the re-evaluations see through: the chosen configuration is the better
    # arm, by the mean of its re-evaluations, and the lucky one's mean is lower.
    chosen = records.ranked(every, objectives)[0]
    assert chosen.params["arm"] == "high"
    confirmed = records.configurations(every)
    assert luckiest.number in confirmed and chosen.number in confirmed
    assert confirmed[chosen.number].mean > confirmed[luckiest.number].mean
    assert confirmed[luckiest.number].mean < luckiest.value - 0.05  # its luck is gone
    for configuration in confirmed.values():
        assert all(t.state == TrialState.COMPLETE for t in configuration.evaluations)
        assert [t.user_attrs["repeat"] for t in configuration.evaluations] == list(
            range(1, configuration.n + 1)
        )
        assert all(t.params == configuration.trial.params for t in configuration.evaluations)

    # Everyone who reads the study decides alike: the table, pandas, final.
    assert main(["trials", "--storage", db, "--study", "lucky"]) == 0
    out = capsys.readouterr().out
    assert "confirmed_mean" in out and "chosen" in out
    from hpsearch.analysis.frames import trials_frame

    frame = trials_frame(db, "lucky")
    assert frame.loc[frame["chosen"], "number"].tolist() == [chosen.number]
    assert frame["confirms"].notna().sum() == sum(c.n for c in confirmed.values())
    final = ["final", "--storage", db, "--study", "lucky", "--seeds", "1", "--code", str(tmp_path)]
    assert main(final) == 0
    out = capsys.readouterr().out
    assert f"chosen trial {chosen.number}: arm=high" in out
    assert "re-evaluations, the value it was chosen by" in out
    again = optuna.load_study(study_name="lucky", storage=db).user_attrs["final"]["reevaluated"]
    assert again["n"] == confirmed[chosen.number].n
    spent = Spending.of(every)
    assert spent.search_trials == 21 and spent.reevaluations == len(every) - 21
    assert "% confirmation" in spent.text()


def test_each_round_confirms_its_own_leaders_and_copies_no_reevaluation(tmp_path, request):
    from hpsearch.search.rounds import run_rounds

    module = "rounds_" + request.node.name[-8:]
    (tmp_path / f"{module}.py").write_text(LUCKY)
    path = tmp_path / "lucky.toml"
    path.write_text(LUCKY_SPEC.format(module=module).replace('"lowest"]', '"lowest"]\n'))
    spec = specs.with_overrides(specs.load(path), storage=f"sqlite:///{tmp_path / 'r.db'}")
    done = run_rounds(dataclasses.replace(spec, code=trusted([tmp_path])), 2, tolerance=-1.0)
    assert len(done) == 2
    child = done[1].result.study.get_trials(deepcopy=False)
    copies = [t for t in child if records.is_copy(t)]
    assert copies and not any(records.is_confirmation(t) for t in copies)
    own = [t for t in child if records.is_confirmation(t)]
    assert own and all(not records.is_copy(t) for t in own)
    for round_result in done:
        trials_ = round_result.result.study.get_trials(deepcopy=False)
        chosen = records.ranked(trials_, (VAL_SCORE,))[0]
        assert round_result.best_value == records.configurations(trials_)[chosen.number].mean


def test_a_raised_budget_searches_its_share_and_races_its_leaders_again(tmp_path, request):
    from hpsearch.search.confirm import study_done

    module = "raised_" + request.node.name[-8:]
    (tmp_path / f"{module}.py").write_text(LUCKY)
    path = tmp_path / "lucky.toml"
    path.write_text(LUCKY_SPEC.format(module=module))
    spec = specs.with_overrides(specs.load(path), storage=f"sqlite:///{tmp_path / 'r.db'}")
    spec = dataclasses.replace(spec, code=trusted([tmp_path]))
    run(spec)
    raised = dataclasses.replace(specs.with_overrides(spec, n_trials=60), code=spec.code)
    study = run(raised).study
    every = study.get_trials(deepcopy=False)
    searched = [t for t in every if not records.is_confirmation(t) and t.state != TrialState.FAIL]
    assert len(searched) == 60 - 9  # the earlier re-evaluations took none of its share
    assert study_done(study, raised)
    leaders = records.ranked(searched, (VAL_SCORE,))[:3]
    confirmed = records.configurations(every)
    assert all(confirmed[t.number].n >= 2 for t in leaders)  # this race's, whole


def _trial(number: int, value: float | None, x: float, **attrs) -> optuna.trial.FrozenTrial:
    made = create_trial(
        state=TrialState.COMPLETE if value is not None else TrialState.WAITING,
        value=value,
        params={"x": x},
        distributions={"x": FloatDistribution(0.0, 1.0)},
        user_attrs=attrs,
    )
    made.number = number
    return made


def test_the_race_queues_whole_rounds_and_drops_what_is_clearly_behind():
    spec = specs.from_dict(
        {
            "model": {"kind": "python", "entry": "m:f"},
            "search": {
                "n_trials": 20,
                "params": {"x": {"low": 0.0, "high": 1.0}},
                "confirm": {"top_k": 3, "max_repeats": 4, "share": 0.6},
            },
        }
    )
    goals = (VAL_SCORE,)
    search = [
        _trial(n, v, n / 10) for n, v in enumerate([0.9, 0.5, 0.89, 0.88, 0.4, 0.3, 0.2, 0.1])
    ]
    first = stage(search, spec, goals)
    assert [(t.number, r) for t, r in first.queue] == [(0, 1), (2, 1), (3, 1)]

    def again(number: int, repeat: int, value: float | None, at: int) -> optuna.trial.FrozenTrial:
        return _trial(at, value, number / 10, confirms=number, repeat=repeat)

    # Queued, not finished: nothing more to queue, three awaited.
    queued = [again(0, 1, None, 8), again(2, 1, None, 9), again(3, 1, None, 10)]
    waiting = stage(search + queued, spec, goals)
    assert not waiting.queue and waiting.awaited == 3 and not waiting.over
    # Two repeats: trial 3's configuration is behind by 0.10 +- 0.01, trial 2's within
    # the noise; only 3 is dropped, and the third round is queued for 0 and 2.
    done = [
        again(0, 1, 0.80, 8),
        again(2, 1, 0.78, 9),
        again(3, 1, 0.70, 10),
        again(0, 2, 0.82, 11),
        again(2, 2, 0.83, 12),
        again(3, 2, 0.71, 13),
    ]
    third = stage(search + done, spec, goals)
    assert [(t.number, r) for t, r in third.queue] == [(0, 3), (2, 3)]
    # The chosen configuration is decided by the re-evaluations' mean, among the most
    # evaluated: 2 leads 0 by then, though 0 had the best single value.
    more = [again(0, 3, 0.79, 14), again(2, 3, 0.84, 15)]
    assert records.ranked(search + done + more, goals)[0].number == 2
    # The budget ends the race where it stands: 12 trials kept, 8 used, the fourth
    # round needs 2 more and fits; a fifth would not be queued.
    fourth = stage(search + done + more, spec, goals)
    assert [(t.number, r) for t, r in fourth.queue] == [(0, 4), (2, 4)]
    # Several objectives, or no room for two configurations: no stage at all.
    off = dataclasses.replace(
        spec, search=dataclasses.replace(spec.search, confirm=specs.Confirm(enabled=False))
    )
    assert stage(search, off, goals).over


# Re-evaluations wait for a file the test writes, after it killed a worker mid-way
# through one: a wait on an event with a deadline, in the user's code.
WAITING = """
import os
import time
from pathlib import Path

FOLDER = Path({folder!r})


def objective(config, report, data, rng):
    if config.repeat:
        (FOLDER / f"started-{{config.repeat}}-{{os.getpid()}}").touch()
        deadline = time.monotonic() + 120
        while not (FOLDER / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    value = 1.0 - (config["x"] - 0.3) ** 2 + 0.01 * rng.standard_normal()
    report(1, value)
    return value
"""

WAITING_SPEC = """
name = "tiny"
seed = 0
[model]
kind = "python"
entry = "{module}:objective"
[training]
epochs = 1
[search]
n_trials = 40
sampler = "random"
pruner = "none"
[search.params.x]
low = 0.0
high = 1.0
"""


def test_reevaluations_survive_a_worker_killed_in_one(database_url, tmp_path, request, capsys):
    module = "waiting_" + request.node.callspec.id
    (tmp_path / f"{module}.py").write_text(WAITING.format(folder=str(tmp_path)))
    path = tmp_path / "waiting.toml"
    path.write_text(WAITING_SPEC.format(module=module))
    db = database_url
    assert main(["submit", str(path), "--storage", db, "--code", str(tmp_path)]) == 0
    capsys.readouterr()
    command = ["worker", "--storage", db, "--study", "tiny", "--code", str(tmp_path)]
    workers = [hpsearch(*command, "--heartbeat", str(HEARTBEAT), "--no-progress") for _ in range(2)]
    try:
        marker = wait_for(
            lambda: next(iter(sorted(Path(tmp_path).glob("started-*"))), None),
            timeout=120,
            what="a worker inside a re-evaluation",
        )
        pid = int(marker.name.rsplit("-", 1)[1])
        victim = next(w for w in workers if w.pid == pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        (tmp_path / "go").touch()
        survivor = next(w for w in workers if w is not victim)
        _, err = survivor.communicate(timeout=300)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert survivor.returncode == 0, err
    assert "Traceback" not in err, err
    assert victim.returncode == -signal.SIGKILL
    assert os.path.exists(tmp_path / "go")

    every = trials(db)
    states = [t.state for t in every]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    again = [t for t in every if records.is_confirmation(t)]
    keys = [(t.user_attrs["confirms"], t.user_attrs["repeat"]) for t in again]
    finished = [k for k, t in zip(keys, again, strict=True) if t.state == TrialState.COMPLETE]
    assert len(finished) == len(set(finished)) == 4  # 2 configurations x 2 repeats, once each
    # The killed worker's re-evaluation failed on its heartbeat and ran again elsewhere.
    dead = [t for t in again if t.state == TrialState.FAIL]
    assert dead, "the killed worker's re-evaluation should have ended as FAIL"
    for trial in dead:
        retried = [t for t in again if t.system_attrs.get("failed_trial") == trial.number]
        assert [t.state for t in retried] == [TrialState.COMPLETE]
        assert retried[0].params == trial.params
    searched = [t for t in every if not records.is_confirmation(t) and t.state != TrialState.FAIL]
    assert len(searched) == 40 - specs.Confirm().reserve(40)


@pytest.mark.parametrize(
    ("confirm", "message"),
    [
        ("[search.confirm]\ntop_k = 0", "search.confirm.top_k: must be >= 1"),
        ("[search.confirm]\nshare = 2", "search.confirm.share: must be a fraction"),
        ("[search.confirm]\nrepeats = 2", "search.confirm.repeats: unknown key"),
        ("[search]\nconfirm = 3", "search.confirm: must be a table or true or false"),
        (
            "[search]\nn_trials = 5\n[search.confirm]\nshare = 1.0",
            "search.confirm.share: keeps 5 of the 5 trials for re-evaluations",
        ),
    ],
)
def test_a_confirm_table_that_cannot_run_is_refused_in_one_line(confirm, message):
    with pytest.raises(specs.SpecError, match=message.replace("[", r"\[").replace(".", r"\.")):
        specs.loads(confirm)
