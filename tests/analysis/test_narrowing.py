import math

import numpy as np
import pandas as pd
import pytest

from hpsearch.analysis.narrowing import (
    EXTENDED,
    NARROWED,
    NO_EVIDENCE,
    TOO_FEW,
    NarrowingError,
    narrow,
)
from hpsearch.spec import SEARCHABLE, Choice, FloatRange, IntRange

SPACE = {
    "lr": FloatRange(1e-6, 1e-2, log=True),
    "weight_decay": FloatRange(1e-8, 1e-4, log=True),
    "optimizer": Choice(("sgd", "momentum", "adam")),
}
DEFAULT_SPACE = {
    "lr": FloatRange(1e-5, 1.0, log=True),
    "weight_decay": FloatRange(1e-8, 1e-2, log=True),
    "init_scale": FloatRange(1e-2, 10.0, log=True),
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


def default_study_like(seed: int, top_wd: list[float], n_complete: int = 14) -> pd.DataFrame:
    """What a fresh `make study` leaves: few completed trials among many pruned; lr
    decides the value (best near 0.1), weight decay does not matter at all. The best
    three trials get the weight decays `top_wd`."""
    rng = np.random.default_rng(seed)
    n = 100
    log_lr = rng.uniform(-5, 0, n)
    value = 0.94 - 0.05 * (log_lr + 1) ** 2 + rng.normal(0, 0.005, n)
    # The pruner stops the trials that look worst early on (a noisy view of the value).
    completes = np.argsort(-(value + rng.normal(0, 0.05, n)))[:n_complete]
    frame = pd.DataFrame(
        {
            "number": range(n),
            "state": "PRUNED",
            "value": math.nan,
            "lr": 10**log_lr,
            "weight_decay": 10 ** rng.uniform(-8, -2, n),
            "init_scale": 10 ** rng.uniform(-2, 1, n),
        }
    )
    frame.loc[completes, "state"] = "COMPLETE"
    frame.loc[completes, "value"] = value[completes]
    best = frame["value"].nlargest(3).index
    frame.loc[best, "weight_decay"] = top_wd
    return frame


def test_an_interior_optimum_is_kept_inside_a_narrower_range():
    result = narrow(synthetic({"lr": 1e-4, "weight_decay": 1e-6}), SPACE, top=0.1)
    lr = result.changes["lr"]
    assert lr.new[0] < 1e-4 < lr.new[1]
    assert lr.width_ratio() < 0.6 and not lr.at_edge
    assert lr.decision == NARROWED and lr.p_value < 0.01
    assert lr.new[0] >= 1e-6 and lr.new[1] <= 1e-2  # clipped to the old range
    assert result.changes["optimizer"].new == ("momentum", "adam")  # sgd never among the best
    assert result.params["optimizer"] == Choice(("momentum", "adam"))
    assert result.top_trials == 20 and result.completed == 200


def test_an_optimum_at_the_boundary_is_extended_by_at_most_one_decade():
    # The book's situation: the best lr crowds the 1e-2 upper bound.
    result = narrow(synthetic({"lr": 1e-2, "weight_decay": 1e-6}), SPACE, top=0.1)
    lr = result.changes["lr"]
    assert lr.at_edge == ("high",) and lr.decision == EXTENDED
    # Half the old width would be two decades; one round moves an edge one at most.
    assert lr.new[1] == pytest.approx(1e-1)
    assert lr.new[0] > 1e-6  # while the far side narrows
    assert result.at_edge["lr"] == ("high",)
    low_edge = narrow(synthetic({"lr": 1e-6, "weight_decay": 1e-6}), SPACE).changes["lr"]
    assert low_edge.at_edge == ("low",) and low_edge.new[0] == pytest.approx(1e-7)


@pytest.mark.parametrize(
    ("name", "old", "optimum", "extended"),
    [
        ("weight_decay", (1e-8, 1e-2), 1e-2, (None, 0.1)),  # one decade, and no further
        ("weight_decay", (1e-8, 0.1), 0.1, (None, 0.1)),  # already at the limit
        ("lr", (1e-5, 3.0), 3.0, (None, 10.0)),  # less than a decade left to the limit
        ("init_scale", (1e-2, 10.0), 1e-2, (1e-3, None)),
        ("init_scale", (1e-3, 10.0), 1e-3, (1e-3, None)),
    ],
)
def test_an_edge_never_moves_past_the_settings_sensible_limits(name, old, optimum, extended):
    rng = np.random.default_rng(1)
    log = rng.uniform(math.log10(old[0]), math.log10(old[1]), 200)
    frame = pd.DataFrame(
        {"state": "COMPLETE", name: 10**log, "value": -np.abs(log - math.log10(optimum))}
    )
    change = narrow(frame, {name: FloatRange(*old, log=True)}).changes[name]
    low, high = extended
    if low is not None:
        assert change.new[0] == pytest.approx(low)
    if high is not None:
        assert change.new[1] == pytest.approx(high)
    sensible = SEARCHABLE[name].sensible
    assert sensible[0] <= change.new[0] and change.new[1] <= sensible[1]
    if high == old[1] or low == old[0]:  # already at the limit: said beside the p-value
        assert "edge at the sensible limit" in change.why and "p = " in change.why


def test_the_default_studys_weight_decay_is_kept_for_lack_of_evidence():
    # A fresh `make study`: the top 3 of 14 completed trials span five decades of weight
    # decay, one near the 1e-2 edge. The old rule extended the high edge to 10.
    frame = default_study_like(seed=0, top_wd=[3e-8, 2e-5, 8e-3])
    result = narrow(frame, DEFAULT_SPACE)
    wd = result.changes["weight_decay"]
    assert wd.decision == NO_EVIDENCE and wd.new == (1e-8, 1e-2) and not wd.at_edge
    assert "p = " in wd.why
    lr = result.changes["lr"]  # lr does matter, and is narrowed around 0.1
    assert lr.decision == NARROWED and lr.new[0] > 1e-5 and lr.new[1] <= 1.0
    table = result.table()
    assert set(table["decision"]) >= {NO_EVIDENCE, NARROWED}
    for name, change in result.changes.items():
        limit = SEARCHABLE[name].sensible
        assert limit[0] <= change.new[0] and change.new[1] <= limit[1]


def test_three_tiny_values_among_the_best_are_no_reason_to_narrow():
    # Full Fashion-MNIST round 1: the three best trials happened to have weight decays of
    # 4e-8 to 2e-6, and round 2 was narrowed onto them. Weight decay did not matter.
    frame = default_study_like(seed=3, top_wd=[3.8e-8, 2.5e-7, 1.9e-6], n_complete=30)
    result = narrow(frame, DEFAULT_SPACE, top=0.1)
    assert result.top_trials == 3
    assert result.changes["weight_decay"].decision == NO_EVIDENCE
    assert result.params["weight_decay"] == DEFAULT_SPACE["weight_decay"]
    assert result.changes["lr"].decision == NARROWED


def test_too_few_completed_trials_keep_every_range():
    frame = synthetic({"lr": 1e-4, "weight_decay": 1e-6}, n=9)
    result = narrow(frame, SPACE)
    assert {c.decision for c in result.changes.values()} == {TOO_FEW}
    assert result.params == SPACE and not result.changed
    frame = synthetic({"lr": 1e-4, "weight_decay": 1e-6}, n=30)
    frame.loc[:, "state"] = "PRUNED"
    with pytest.raises(NarrowingError, match="no completed trials"):
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
    # A quarter of the old width at most, and never past the sensible 0.9.
    assert result.params["dropout"].high == pytest.approx(0.9)
    width = result.params["hidden_width"]
    assert isinstance(width, IntRange) and width.low == 1  # widths start at 1


def test_the_evidence_test_is_seeded():
    frame = default_study_like(seed=0, top_wd=[3e-8, 2e-5, 8e-3])
    first = narrow(frame, DEFAULT_SPACE, seed=5).changes["weight_decay"].p_value
    assert first == narrow(frame, DEFAULT_SPACE, seed=5).changes["weight_decay"].p_value


def test_bootstrap_gives_intervals_around_each_bound():
    result = narrow(synthetic({"lr": 1e-4, "weight_decay": 1e-6}), SPACE, bootstrap=50)
    lr = result.changes["lr"]
    assert lr.interval_low[0] <= lr.new[0] <= lr.interval_low[1] * 1.0001
    assert lr.interval_high[0] <= lr.new[1] * 1.0001
    assert "95% CI low" in result.table().columns
