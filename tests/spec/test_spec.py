import dataclasses
from pathlib import Path

import pytest

from hpsearch import spec
from hpsearch.spec import Choice, FloatRange, IntRange, SpecError, StudySpec, with_overrides

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_shipped_specs_load():
    default = spec.load(ROOT / "studies" / "mnist_lr_wd_init.toml")
    assert default.search.params == {
        "lr": FloatRange(1e-5, 1.0, log=True),
        "weight_decay": FloatRange(1e-8, 1e-2, log=True),
        "init_scale": FloatRange(1e-2, 10.0, log=True),
    }
    assert default.model.hidden_sizes == (100,) * 6 and default.data.name == "mnist-5k"
    assert default == StudySpec()  # the file writes the built-in defaults out
    classic = spec.load(ROOT / "studies" / "classic_random_search.toml")
    assert (classic.data.train_size, classic.data.validation_fraction) == (500, 0.2)
    assert (classic.search.sampler, classic.search.n_trials, classic.training.epochs) == (
        "random",
        100,
        50,
    )
    assert classic.search.params["lr"] == FloatRange(1e-6, 1e-2, log=True)
    assert classic.search.params["weight_decay"] == FloatRange(1e-8, 1e-4, log=True)


def test_five_line_spec_gets_defaults_for_everything_else(tmp_path):
    loaded = spec.load(write(tmp_path, 'name = "tiny"\n[search]\nn_trials = 5\n'))
    assert loaded.name == "tiny" and loaded.search.n_trials == 5
    assert loaded.search.params == StudySpec().search.params
    assert loaded.training.epochs == 10 and loaded.search.sampler == "tpe"


def test_every_kind_of_parameter(tmp_path):
    loaded = spec.load(
        write(
            tmp_path,
            """
[search.params.lr]
low = 1e-4
high = 1
log = true
[search.params.batch_size]
choices = [32, 64, 128]
[search.params.hidden_depth]
low = 1
high = 6
[search.params.optimizer]
choices = ["sgd", "adam"]
[search.params.batchnorm]
choices = [true, false]
[search.params.dropout]
low = 0.0
high = 0.5
step = 0.1
""",
        )
    )
    params = loaded.search.params
    assert params["lr"] == FloatRange(1e-4, 1.0, log=True)
    assert params["batch_size"] == Choice((32, 64, 128))
    assert params["hidden_depth"] == IntRange(1, 6)
    assert params["optimizer"] == Choice(("sgd", "adam"))
    assert params["batchnorm"] == Choice((True, False))
    assert params["dropout"] == FloatRange(0.0, 0.5, step=0.1)


def test_to_dict_round_trips_and_experiment_ignores_the_budget():
    original = StudySpec()
    assert spec.from_dict(original.to_dict()) == original
    more = with_overrides(original, n_trials=7, storage="sqlite:///x.db")
    assert more.search.n_trials == 7 and more.experiment() == original.experiment()
    assert with_overrides(original, epochs=3).experiment() != original.experiment()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nmae = 'x'", "nmae: unknown key"),
        ("[model]\nhidden = [100]", "model.hidden: unknown key"),
        ("[search.params.lr]\nlow = 1.0\nhigh = 1e-3\nlog = true", "inverted range"),
        ("[search.params.lr]\nlow = 0.1\nhigh = 0.1", "empty range"),
        ("[search.params.lr]\nlow = 0.0\nhigh = 1.0\nlog = true", "search.params.lr.low"),
        (
            "[search.params.weight_decay]\nlow = 0\nhigh = 1\nlog = true",
            "log range must have low > 0",
        ),
        ("[search.params.lr]\nlow = -1.0\nhigh = 1.0", "must be > 0, got -1.0"),
        ("[search.params.lr]\nlow = nan\nhigh = 1.0", "finite"),
        ("[search.params.lr]\nlow = 1e-3\nhigh = inf", "finite"),
        ("[search.params.lr]\nlow = 1e-3", "needs both low and high"),
        (
            "[search.params.lr]\nlow = 1e-3\nhigh = 1\nlgo = true",
            "search.params.lr.lgo: unknown key",
        ),
        ("[search.params.momentum]\nlow = 0.5\nhigh = 0.9", "cannot be searched"),
        ("[search.params.optimizer]\nchoices = ['sgd', 'lbfgs']", "unknown optimizer 'lbfgs'"),
        ("[search.params.optimizer]\nchoices = []", "non-empty list"),
        ("[search.params.dropout]\nlow = 0.0\nhigh = 1.0", "must be < 1"),
        ("[search]\nsampler = 'bayes'", "unknown sampler 'bayes'"),
        ("[search]\npruner = 'early'", "unknown pruner 'early'"),
        ("[search]\nn_trials = 0", "search.n_trials: must be >= 1"),
        ("[training]\noptimizer = 'lbfgs'", "training.optimizer: unknown optimizer 'lbfgs'"),
        ("[training]\nepochs = 2.5", "training.epochs: must be an integer"),
        ("[data]\nname = 'cifar-10'", "data.name: unknown data set 'cifar-10'"),
        ("[data]\nvalidation_fraction = 1.5", "data.validation_fraction: must be < 1"),
        ("[model]\nactivation = 'gelu'", "unknown activation 'gelu'"),
        ("[model]\nhidden_sizes = [100, 0]", "positive integers"),
        ("name = ''", "name: must be 1 to 512 characters"),
        ("name = '" + "x" * 513 + "'", "name: must be 1 to 512 characters, got 513"),
        ("seed = -3", "seed: must be >= 0"),
        ("[search\nn_trials = 3", "not valid TOML"),
    ],
)
def test_bad_specs_name_the_file_the_key_and_the_problem(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        spec.load(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        spec.load(tmp_path / "nope.toml")


def test_default_pruner_options_follow_the_chosen_pruner(tmp_path):
    """hpsearch's measured default (3 epochs before median pruning) applies only where a
    spec names no pruner options, and only to the median pruner."""
    bare = spec.load(write(tmp_path, 'name = "a"\n[search]\nn_trials = 5\n'))
    assert bare.search.pruner_kwargs == {"n_warmup_steps": 3}
    assert dict(bare.search.sampler_options) == {}  # Optuna's TPE as it comes
    assert bare.search.start_at_defaults is True
    other = spec.load(write(tmp_path, 'name = "b"\n[search]\npruner = "none"\n'))
    assert other.search.pruner_kwargs == {}
    # Another pruner in code, too: the defaults are those of the pruner named.
    swapped = dataclasses.replace(bare.search, pruner="hyperband")
    assert swapped.pruner_kwargs == {}
    own = spec.load(write(tmp_path, 'name = "c"\n[search.pruner_options]\nn_startup_trials = 2\n'))
    assert own.search.pruner_kwargs == {"n_startup_trials": 2}  # exactly that
    empty = spec.load(write(tmp_path, 'name = "d"\n[search.pruner_options]\n'))
    assert empty.search.pruner_kwargs == {}
    for loaded in (bare, other, own, empty):
        assert spec.from_dict(loaded.to_dict()) == loaded


def test_data_file_paths_are_found_next_to_the_spec(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    path = folder / "s.toml"
    path.write_text('[data]\nname = "csv:data/t.csv"\nlabel = "y"\ntest = "../t.csv"\n')
    loaded = spec.load(path)
    assert loaded.data.name == f"csv:{folder / 'data' / 't.csv'}"
    assert loaded.data.test == str(folder / ".." / "t.csv")
    again = spec.from_dict(loaded.to_dict())  # a stored spec keeps its absolute paths
    assert again.data == loaded.data


def test_file_settings_are_refused_for_built_in_data_and_standardize_defaults_to_on():
    with pytest.raises(spec.SpecError, match="data.label: is for data files"):
        spec.loads('[data]\nname = "digits"\nlabel = "y"\n')
    with pytest.raises(spec.SpecError, match="data.label: an NPZ file holds arrays x and y"):
        spec.loads('[data]\nname = "npz:/a.npz"\nlabel = "y"\n')
    on = spec.loads('[data]\nname = "csv:/a.csv"\nstandardize = true\n')
    assert on.experiment() == spec.loads('[data]\nname = "csv:/a.csv"\n').experiment()
    off = spec.loads('[data]\nname = "csv:/a.csv"\nstandardize = false\n')
    assert off.data.standardize is False and off.experiment() != on.experiment()


PYTHON_ENTRY = (
    '[model]\nkind = "python"\nentry = "m:f"\n[search.params.lr]\nlow = 0.1\nhigh = 1.0\n'
)


@pytest.mark.parametrize(
    "text",
    [
        '[search]\nobjective = "val_accuracy"\n',
        '[search]\nobjectives = [{ name = "val_loss" }, { name = "n_params" }]\n'
        "[search.constraints]\nn_params = { max = 5000 }\nval_loss = { min = 0.0, max = 2.0 }\n",
        PYTHON_ENTRY + '[search]\nobjective = "val_score"\n',
        PYTHON_ENTRY + '[search]\nobjectives = [{ name = "rmse", direction = "minimize" }]\n',
    ],
)
def test_objectives_and_constraints_read_back_equal(text):
    loaded = spec.loads(text)
    assert spec.from_dict(loaded.to_dict()) == loaded
    assert spec.loads(spec.dumps(loaded)) == loaded


def test_the_default_objective_written_out_is_the_same_experiment():
    written = spec.loads('[search]\nobjective = "val_accuracy"\n')
    assert written.experiment() == StudySpec().experiment()
    assert written.objectives[0].direction == "maximize"


def test_objectives_and_constraints_are_part_of_the_experiment():
    plain = spec.loads("")
    loss = spec.loads('[search]\nobjective = "val_loss"\n')
    bounded = spec.loads("[search.constraints]\nn_params = { max = 5000 }\n")
    assert len({str(s.experiment()) for s in (plain, loss, bounded)}) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            PYTHON_ENTRY
            + '[search]\nobjectives = [{ name = "seconds", direction = "minimize" }]\n',
            "'seconds' is a name hpsearch gives a trial's own records",
        ),
        (
            PYTHON_ENTRY + "[search.constraints]\nmetrics = { max = 1 }\n",
            "'metrics' is a name hpsearch gives a trial's own records",
        ),
        (PYTHON_ENTRY + '[search.constraints]\n"a b" = { max = 1 }\n', "a metric name is a word"),
        (
            '[search]\nreproducible = true\nobjective = "train_seconds"\n',
            "cannot repeat train_seconds, which the clock measures",
        ),
        (
            "[search]\nreproducible = true\n[search.constraints]\ntrain_seconds = { max = 9 }\n",
            "cannot repeat train_seconds",
        ),
        ('[search]\nobjective = "val_f1"\n', "unknown metric 'val_f1'"),
        (PYTHON_ENTRY + '[search]\nobjective = "f1"\n', "'f1' has no known direction"),
        ('[search]\nobjectives = ["val_accuracy", "n_params"]\nsampler = "cmaes"\n', "cmaes"),
        ("[search.constraints]\nn_params = { max = 1, min = 2 }\n", "min 2.0 is above max 1.0"),
    ],
)
def test_objective_specs_that_cannot_work_are_refused(text, message):
    with pytest.raises(SpecError, match=message):
        spec.loads(text)


def test_every_record_hpsearch_keeps_on_a_trial_is_a_name_no_metric_may_take():
    from hpsearch import records
    from hpsearch.spec.schema import RESERVED_NAMES

    metrics = {metric.name for metric in records.METRICS}
    kept = {a.name for a in records.TRIAL_ATTRIBUTES if not a.name.startswith("<")} - metrics
    assert kept <= RESERVED_NAMES, sorted(kept - RESERVED_NAMES)


@pytest.mark.parametrize(
    ("name", "kept"),
    [("mnist-lr-wd-init-r2", True), ("lr search 7f3a", True), ("..", False), (".hidden", False)],
)
def test_a_study_name_becomes_one_plain_file_name(name, kept):
    from hpsearch.spec.names import file_name

    made = file_name(name)
    assert (made == name) is kept
    assert made and "/" not in made and not made.startswith(".")
