"""The reference experiments' findings, asserted on fixed seeds and reduced sizes."""

import math
import re

import pytest

from hpsearch.cli import main
from hpsearch.experiments import (
    EXPERIMENTS,
    activations,
    batchnorm,
    circles,
    experiment,
    init_mnist,
    optimizers,
    overfit,
)


def figures_written(result) -> None:
    assert result.figures
    for path in result.figures:
        assert path.stat().st_size > 5_000, path


def test_activation_statistics_behave_as_the_articles_say(tmp_path):
    result = activations.run(tmp_path, samples=500, deep_width=200, deep_depth=6)
    table = result.table[result.table["net"] == "5x100"]

    def stds(activation, weights):
        rows = table[(table["activation"] == activation) & (table["weights"] == weights)]
        return rows.sort_values("layer")["std"].to_numpy()

    def saturated(activation, weights):
        rows = table[(table["activation"] == activation) & (table["weights"] == weights)]
        return rows["saturated"].to_numpy()

    he, xavier = stds("relu", "He"), stds("relu", "Xavier")
    assert he[-1] / he[0] < 2 and he[0] / he[-1] < 2  # He keeps the width
    assert xavier[-1] < 0.5 * xavier[0]  # Xavier shrinks it with depth under ReLU
    assert (saturated("sigmoid", "std 1") > 0.5).all()  # piled up at 0 and 1
    assert (stds("sigmoid", "std 0.01") < 0.03).all()  # one value, 0.5
    assert stds("tanh", "std 0.01")[-1] < 1e-3 * stds("tanh", "Xavier")[-1]
    figures_written(result)


def test_init_mnist_std_001_stays_at_chance_he_beats_xavier(tmp_path):
    result = init_mnist.run(tmp_path, iterations=600)
    loss = result.table.set_index("init")["loss @ 600"]
    assert abs(loss["std 0.01"] - math.log(10)) / math.log(10) < 0.02
    assert loss["He"] < loss["Xavier"] < 0.5 * math.log(10)
    figures_written(result)


def test_optimizers_all_descend_and_reach_the_minimum_of_the_book_function(tmp_path):
    result = optimizers.run(tmp_path, iterations=300)
    table = result.table.set_index("optimizer")
    assert (table["loss @ 300"] < 0.5 * math.log(10)).all()
    assert (table["f after 30 steps"] < 0.2).all()  # from f(-7, 2) = 6.45
    figures_written(result)


def test_batchnorm_makes_learning_robust_to_the_init_scale(tmp_path):
    result = batchnorm.run(tmp_path, scales=8)
    final = result.table.groupby("batch norm")["final train accuracy"]
    spread, learned = final.std(), final.apply(lambda a: (a >= 0.9).sum())
    assert spread[True] < spread[False]
    assert learned[True] >= learned[False] + 2
    figures_written(result)


def test_weight_decay_and_dropout_shrink_the_overfitting_gap(tmp_path):
    result = overfit.run(tmp_path, epochs=100)
    gap = result.table.set_index("regularisation")["gap"]
    assert gap["none"] > 0.1  # 300 examples: the plain net overfits
    assert gap["weight decay 0.1"] < gap["none"]
    assert gap["dropout 0.2"] < gap["none"]
    figures_written(result)


def test_every_experiment_name_resolves_to_its_modules_run():
    modules = [activations, circles, init_mnist, optimizers, batchnorm, overfit]
    assert [experiment(name) for name in EXPERIMENTS] == [m.run for m in modules]


def test_circles_zeros_predict_one_class_he_learns_large_random_in_between(tmp_path, capsys):
    # Through the command, which prints the table and writes the figure: the full 15,000
    # iterations once, about 5 s.
    assert main(["experiment", "circles", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "train accuracy" in out and "figure:" in out
    rows = re.findall(r"^\s*(zeros|random x10|He)\s+([0-9.]+)\s", out, flags=re.MULTILINE)
    table = {init: float(train) for init, train in rows}  # train accuracy to 4 digits
    assert len(rows) == len(table) == 3
    assert table["zeros"] == pytest.approx(0.5, abs=0.05)
    assert table["He"] >= 0.95
    assert table["random x10"] < table["He"]
    assert (tmp_path / "circles_decision_boundaries.png").stat().st_size > 5_000
