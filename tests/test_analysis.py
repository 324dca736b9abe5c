import math

import numpy as np
import optuna
import pandas as pd
import pytest

from hpsearch.analysis import NarrowingError, curves_frame, narrow, trials_frame
from hpsearch.spec import Choice, FloatRange, IntRange

SPACE = {
    "lr": FloatRange(1e-6, 1e-2, log=True),
    "weight_decay": FloatRange(1e-8, 1e-4, log=True),
    "optimizer": Choice(("sgd", "momentum", "adam")),
}


def synthetic(optimum: dict[str, float], n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Trials uniform in log space whose value peaks at `optimum` (log10 distance)."""
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-6, -2, n)
    wd = 10 ** rng.uniform(-8, -4, n)
    optimizer = rng.choice(["sgd", "momentum", "adam"], n)
    distance = (np.log10(lr) - math.log10(optimum["lr"])) ** 2 + 0.1 * (
        np.log10(wd) - math.log10(optimum["weight_decay"])
    ) ** 2
    value = 0.95 - 0.05 * distance - 0.2 * (optimizer == "sgd")
    return pd.DataFrame(
        {
            "number": range(n),
            "state": "COMPLETE",
            "value": value,
            "lr": lr,
            "weight_decay": wd,
            "optimizer": optimizer,
        }
    )


def test_an_interior_optimum_is_kept_inside_a_narrower_range():
    result = narrow(synthetic({"lr": 1e-4, "weight_decay": 1e-6}), SPACE, top=0.1)
    lr = result.changes["lr"]
    assert lr.new[0] < 1e-4 < lr.new[1]
    assert lr.width_ratio() < 0.6 and not lr.at_edge
    assert lr.new[0] >= 1e-6 and lr.new[1] <= 1e-2  # clipped to the old range
    assert result.changes["optimizer"].new == ("momentum", "adam")  # sgd never among the best
    assert result.params["optimizer"] == Choice(("momentum", "adam"))
    assert result.top_trials == 20 and result.completed == 200


def test_an_optimum_at_the_boundary_is_flagged_and_extended_not_cut():
    # The book's situation: the best lr crowds the 1e-2 upper bound.
    result = narrow(synthetic({"lr": 1e-2, "weight_decay": 1e-6}), SPACE, top=0.1)
    lr = result.changes["lr"]
    assert lr.at_edge == ("high",)
    assert lr.new[1] > 1e-2  # extended past the old bound...
    assert lr.new[1] == pytest.approx(10 ** (-2 + 0.5 * 4))  # ...by half the old log width
    assert lr.new[0] > 1e-6  # while the far side narrows
    assert result.at_edge["lr"] == ("high",)
    low_edge = narrow(synthetic({"lr": 1e-6, "weight_decay": 1e-6}), SPACE).changes["lr"]
    assert low_edge.at_edge == ("low",) and low_edge.new[0] < 1e-6


def test_too_few_completed_trials_is_refused():
    frame = synthetic({"lr": 1e-4, "weight_decay": 1e-6}, n=9)
    with pytest.raises(NarrowingError, match="only 9 completed trials"):
        narrow(frame, SPACE)
    frame = synthetic({"lr": 1e-4, "weight_decay": 1e-6}, n=30)
    frame.loc[5:, "state"] = "PRUNED"
    with pytest.raises(NarrowingError, match="only 5 completed trials"):
        narrow(frame, SPACE)


def test_linear_and_integer_ranges_stay_valid_when_extended():
    space = {"dropout": FloatRange(0.0, 0.8), "hidden_width": IntRange(1, 9)}
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "state": "COMPLETE",
            "dropout": rng.uniform(0, 0.8, 100),
            "hidden_width": rng.integers(1, 10, 100),
        }
    )
    frame["value"] = frame["dropout"] - 0.01 * frame["hidden_width"]  # best at 0.8 and 1
    result = narrow(frame, space)
    assert result.changes["dropout"].at_edge == ("high",)
    assert 0.8 < result.params["dropout"].high < 1.0  # dropout must stay below 1
    width = result.params["hidden_width"]
    assert isinstance(width, IntRange) and width.low == 1  # widths start at 1


def test_bootstrap_gives_intervals_around_each_bound():
    result = narrow(synthetic({"lr": 1e-4, "weight_decay": 1e-6}), SPACE, bootstrap=50)
    lr = result.changes["lr"]
    assert lr.interval_low[0] <= lr.new[0] <= lr.interval_low[1] * 1.0001
    assert lr.interval_high[0] <= lr.new[1] * 1.0001
    assert "95% CI low" in result.table().columns


def test_trials_frame_and_curves_frame_work_on_a_plain_optuna_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'plain.db'}"
    study = optuna.create_study(study_name="plain", storage=storage, direction="minimize")

    def objective(trial):
        x = trial.suggest_float("x", 1e-3, 10.0, log=True)
        kind = trial.suggest_categorical("kind", ["a", "b"])
        for step in range(3):
            trial.report(x * (step + 1), step)
        return (math.log10(x)) ** 2 + (kind == "b")

    study.optimize(objective, n_trials=5)
    frame = trials_frame(storage, "plain")
    assert list(frame["number"]) == [0, 1, 2, 3, 4]
    assert set(frame["state"]) == {"COMPLETE"}
    assert np.allclose(frame["log10_x"], np.log10(frame["x"]))
    assert "log10_kind" not in frame.columns
    assert (frame["epochs_run"] == 3).all() and (frame["seconds"] >= 0).all()
    assert not frame["diverged"].any() and (frame["round"] == 1).all()
    curves = curves_frame(storage, "plain")
    assert len(curves) == 15 and set(curves["metric"]) == {"intermediate"}
