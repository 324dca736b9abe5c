"""`hpsearch trials --compare`: two runs of one spec and seed with one worker agree to
the last digit; another seed does not, and the differences are named."""

from hpsearch.cli import main
from tests.support import TINY


def test_two_runs_of_one_spec_agree_and_another_seed_differs(tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY.format(n_trials=6, sampler="tpe", pruner="median"))
    db = f"sqlite:///{tmp_path / 'c.db'}"
    run = ["run", str(spec), "--storage", db, "--workers", "1", "--epochs", "3", "--no-progress"]
    assert main([*run, "--study", "first"]) == 0
    assert main([*run, "--study", "again"]) == 0
    assert main([*run, "--study", "other", "--seed", "1"]) == 0
    capsys.readouterr()
    assert main(["trials", "--study", "first", "--storage", db, "--compare", "again"]) == 0
    out = capsys.readouterr().out
    assert "'first' and 'again' agree: 6 trials" in out
    assert main(["trials", "--study", "first", "--storage", db, "--compare", "other"]) == 1
    out = capsys.readouterr().out
    assert "'first' and 'other' differ in" in out and "params" in out
    missing = ["trials", "--study", "first", "--storage", db, "--compare", "nope"]
    assert main(missing) == 2
    assert "no study named 'nope'" in capsys.readouterr().err


def test_differences_name_each_field_and_trials_only_one_study_has():
    import math

    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from hpsearch.analysis.compare import differences

    def trial(number, value, curve, lr=0.1):
        made = create_trial(
            state=TrialState.COMPLETE,
            value=value,
            params={"lr": lr},
            distributions={"lr": FloatDistribution(1e-3, 1.0, log=True)},
            intermediate_values=curve,
            user_attrs={"epochs_run": len(curve), "worker": f"host:{number}"},
        )
        made.number = number
        return made

    ours = [trial(0, 0.5, {1: math.nan}), trial(1, 0.7, {1: 0.6, 2: 0.7}), trial(2, 0.1, {})]
    theirs = [trial(0, 0.5, {1: math.nan}), trial(1, 0.7, {1: 0.6, 2: 0.7000001}, lr=0.2)]
    found = differences(ours, theirs)
    assert found[["number", "field"]].values.tolist() == [
        [1, "params"],
        [1, "intermediate_values"],
        [2, "trial"],
    ]
    assert differences(ours, ours).empty  # NaN curves and other workers agree


def test_a_rounds_copies_are_compared_by_number_not_by_their_parents_slot():
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from hpsearch.analysis.compare import differences

    def trial(number, value, **attrs):
        made = create_trial(
            state=TrialState.COMPLETE,
            value=value,
            params={"lr": 0.1},
            distributions={"lr": FloatDistribution(1e-3, 1.0, log=True)},
            user_attrs=attrs,
        )
        made.number = number
        return made

    # Copies of two different parents (slots 2 and 3 there), then the same own trials.
    ours = [trial(0, 0.5, slot=2, copied_from="p#2"), trial(1, 0.6, slot=3, copied_from="p#3")]
    theirs = [trial(0, 0.1, slot=2, copied_from="q#2"), trial(1, 0.2, slot=3, copied_from="q#3")]
    own = [trial(2, 0.7, slot=2), trial(3, 0.8, slot=3)]
    found = differences(ours + own, theirs + own)
    assert found[["number", "field"]].values.tolist() == [[0, "value"], [1, "value"]]
