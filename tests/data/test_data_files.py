"""Users' own data files (csv:, npz:, parquet:): what they load into, and every way a
file can be wrong refused with one DataError line."""

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpsearch.data import file_record, load
from hpsearch.data import files as data_files
from hpsearch.errors import DataError

FRUIT = ("apple", "banana", "cherry")


def fruit_table(n: int = 90, seed: int = 0) -> pd.DataFrame:
    """Three string classes in three numeric features, the label column in the middle."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) % 3
    return pd.DataFrame(
        {
            "width": rng.normal(t * 10.0 + 100.0, 1.0),
            "kind": [FRUIT[::-1][i] for i in t],  # the widest (t = 2) are apples
            "height": rng.normal(-t * 3.0, 0.5),
            "weight": rng.integers(0, 5, n),
        }
    )


def write_table(path: Path, table: pd.DataFrame) -> Path:
    if path.suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_table_loads_with_sorted_classes_and_standardized_features(tmp_path, suffix):
    table = fruit_table()
    path = write_table(tmp_path / f"fruit{suffix}", table)
    split = load(f"{suffix[1:]}:{path}", label="kind", seed=3)
    assert split.classes == FRUIT and split.n_classes == 3
    assert split.input_size == 3  # width, height, weight; the label column left out
    assert len(split.t_test) == 18 and len(split.t_train) + len(split.t_val) == 72
    # Labels are classes in sorted order: the widest fruit, an apple, is class 0.
    widest = np.argmax(split.x_train[:, 0])
    assert split.t_train[widest] == 0
    # Standardized with the training split's own mean and std.
    np.testing.assert_allclose(split.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(split.x_train.std(axis=0), 1.0, atol=1e-4)
    assert abs(float(split.x_val.mean())) > 1e-4  # not refitted on validation
    raw = load(f"{suffix[1:]}:{path}", label="kind", seed=3, standardize=False)
    assert raw.x_train[:, 0].min() > 90  # the features as written


def test_csv_and_parquet_of_one_table_give_one_split(tmp_path):
    table = fruit_table()
    csv = load(f"csv:{write_table(tmp_path / 'f.csv', table)}", label="kind")
    parquet = load(f"parquet:{write_table(tmp_path / 'f.parquet', table)}", label="kind")
    np.testing.assert_array_equal(csv.t_train, parquet.t_train)
    np.testing.assert_allclose(csv.x_train, parquet.x_train, atol=1e-5)


def test_the_last_column_is_the_label_by_default_and_a_test_file_replaces_the_hold_out(
    tmp_path,
):
    table = fruit_table()[["width", "height", "weight", "kind"]]
    train = write_table(tmp_path / "train.csv", table)
    test = write_table(tmp_path / "test.csv", fruit_table(30, seed=1)[list(table.columns)])
    split = load(f"csv:{train}", test=str(test))
    assert split.classes == FRUIT
    assert len(split.t_test) == 30 and len(split.t_train) + len(split.t_val) == 90
    assert sorted(np.bincount(split.t_test)) == [10, 10, 10]


def test_npz_x_y_and_x_train_x_test(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 2, 3)), np.arange(60) % 4 + 10
    np.savez(tmp_path / "a.npz", x=x, y=y)
    split = load(f"npz:{tmp_path / 'a.npz'}")
    assert split.input_size == 6 and split.classes == ("10", "11", "12", "13")
    assert len(split.t_test) == 12
    np.savez_compressed(tmp_path / "b.npz", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8])
    split = load(f"npz:{tmp_path / 'b.npz'}")
    assert len(split.t_test) == 8 and len(split.t_train) + len(split.t_val) == 60


def test_uncompressed_npz_members_are_memory_mapped(tmp_path):
    x = np.arange(24, dtype=np.float64).reshape(8, 3)
    np.savez(tmp_path / "m.npz", x=x, y=np.arange(8) % 2)
    np.savez_compressed(tmp_path / "c.npz", x=x, y=np.arange(8) % 2)
    for name, mapped in (("m.npz", True), ("c.npz", False)):
        with zipfile.ZipFile(tmp_path / name) as archive:
            info = archive.getinfo("x.npy")
        array = data_files._npz_array(tmp_path / name, info)
        assert isinstance(array, np.memmap) == mapped
        np.testing.assert_array_equal(array, x)


def test_file_record_holds_size_sha256_and_classes(tmp_path):
    path = write_table(tmp_path / "f.csv", fruit_table())
    record = file_record(f"csv:{path}", label="kind")
    assert record["classes"] == list(FRUIT)
    assert record["files"][str(path)]["size"] == path.stat().st_size
    assert len(record["files"][str(path)]["sha256"]) == 64


def csv_text(path: Path, text: str) -> str:
    path.write_text(text)
    return f"csv:{path}"


BAD_TABLES = {
    "missing file": (None, "does not exist"),
    "empty file": ("", "is empty"),
    "header only": ("a,b,label\n", "has a header but no rows"),
    "one column": ("label\n1\n2\n", "has 1 column"),
    "no such label column": ("a,b,y\n1,2,0\n", "has no label column 'label'"),
    "text feature": ("a,b,label\n1,red,0\n2,blue,1\n", "column 'b' is not numeric (e.g. 'red')"),
    "missing feature": ("a,b,label\n1,,0\n2,3,1\n", "column 'b' is missing or NaN in data row 1"),
    "infinite feature": ("a,b,label\n1,2,0\n2,inf,1\n", "column 'b' is inf in data row 2"),
    "missing label": ("a,b,label\n1,2,\n2,3,1\n", "label column 'label' is empty in data row 1"),
    "one class only": ("a,b,label\n1,2,x\n2,3,x\n3,4,x\n", "has one class only ('x')"),
    "too few examples": ("a,b,label\n1,2,x\n2,3,y\n3,4,x\n", "3 examples for 2 classes"),
    "a class of one": (
        "a,b,label\n1,2,x\n2,3,y\n3,4,x\n4,5,x\n5,6,y\n6,7,z\n",
        "class 'z' has 1 example",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_bad_tables_give_one_data_error(tmp_path, case):
    text, message = BAD_TABLES[case]
    path = tmp_path / "bad.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(DataError, match=None) as error:
        load(f"csv:{path}", label="label")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_test_file_with_other_columns_or_unknown_labels_is_refused(tmp_path):
    train = write_table(tmp_path / "train.csv", fruit_table()[["width", "height", "kind"]])
    other = write_table(tmp_path / "other.csv", fruit_table()[["width", "weight", "kind"]])
    with pytest.raises(DataError, match=r"test file .*other.csv has columns \[width, weight"):
        load(f"csv:{train}", test=str(other))
    unknown = fruit_table()[["width", "height", "kind"]].replace("apple", "durian")
    with pytest.raises(DataError, match="has label 'durian', which .* never has"):
        load(f"csv:{train}", test=str(write_table(tmp_path / "u.csv", unknown)))


def test_bad_npz_files(tmp_path):
    np.savez(tmp_path / "keys.npz", a=np.zeros((4, 2)), b=np.arange(4))
    with pytest.raises(DataError, match=r"has arrays \['a', 'b'\]; it needs x and y"):
        load(f"npz:{tmp_path / 'keys.npz'}")
    np.savez(tmp_path / "len.npz", x=np.zeros((4, 2)), y=np.arange(5))
    with pytest.raises(DataError, match="x has 4 examples, y has 5 labels"):
        load(f"npz:{tmp_path / 'len.npz'}")
    np.savez(tmp_path / "nan.npz", x=np.full((4, 2), np.nan), y=np.arange(4) % 2)
    with pytest.raises(DataError, match="feature 0 is missing or NaN in data row 1"):
        load(f"npz:{tmp_path / 'nan.npz'}")
    np.savez(tmp_path / "obj.npz", x=np.array([{}, {}], dtype=object), y=np.arange(2))
    with pytest.raises(DataError, match="Python objects"):
        load(f"npz:{tmp_path / 'obj.npz'}")
    (tmp_path / "not.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(DataError, match="cannot read NPZ file"):
        load(f"npz:{tmp_path / 'not.npz'}")


def test_label_and_test_are_for_files_only():
    with pytest.raises(DataError, match="label and test are for data files"):
        load("digits", label="y")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet="0123456789,.-eEinfaNx \n\"'", max_size=200))
def test_any_csv_text_loads_or_fails_with_a_data_error(tmp_path, text):
    name = csv_text(tmp_path / "any.csv", text)
    try:
        split = load(name)
    except DataError as error:
        assert "\n" not in str(error)
    else:
        assert np.isfinite(split.x_train).all() and split.n_classes >= 2


# -- through the `hpsearch` command ----------------------------------------------------------

SPEC = """name = "{name}"
[data]
name = "{data}"
{extra}
[model]
hidden_sizes = [16]
[training]
epochs = 3
batch_size = 10
[search]
n_trials = 6
pruner = "none"
"""


def file_spec(folder: Path, name: str, data: str, extra: str = "") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(SPEC.format(name=name, data=data, extra=extra))
    return path


@pytest.mark.parametrize("kind", ["csv", "npz", "parquet"])
def test_a_study_on_a_data_file_runs_narrows_and_finals(tmp_path, capsys, kind):
    """Relative paths are found next to the spec, from any working directory."""
    from hpsearch.cli import main

    folder = tmp_path / "project"
    folder.mkdir()
    table = fruit_table(120)
    if kind == "npz":
        t = np.array([FRUIT.index(k) for k in table["kind"]])
        np.savez(folder / "fruit.npz", x=table[["width", "height", "weight"]].to_numpy(), y=t)
        spec = file_spec(folder, "fruit", "npz:fruit.npz")
    else:
        write_table(folder / f"fruit.{kind}", table)
        spec = file_spec(folder, "fruit", f"{kind}:fruit.{kind}", 'label = "kind"')
    db = f"sqlite:///{tmp_path / 'f.db'}"
    args = ["run", str(spec), "--storage", db, "--rounds", "2", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "fruit-r2" in out
    assert main(["final", "--study", "fruit-r2", "--storage", db]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.6  # three well separated classes: chance is 1/3
    import optuna

    study = optuna.load_study(study_name="fruit", storage=db)
    record = study.user_attrs["data"]
    assert list(record["files"]) == [str(folder / f"fruit.{kind}")]
    assert record["classes"] == (["0", "1", "2"] if kind == "npz" else list(FRUIT))


def test_train_and_experiment_take_a_data_file(tmp_path, capsys):
    from hpsearch.cli import main

    path = write_table(tmp_path / "fruit.parquet", fruit_table(120))
    args = ["train", "--data", f"parquet:{path}", "--label", "kind", "--hidden", "16x2"]
    assert main([*args, "--epochs", "5", "--batch-size", "10", "--lr", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "3 features, 3 classes" in out
    assert float(out.split("final validation accuracy ")[1].split()[0]) > 0.6
    table = fruit_table(120)[["width", "height", "weight", "kind"]]  # label last
    csv = write_table(tmp_path / "fruit.csv", table)
    args = ["experiment", "init-mnist", "--data", f"csv:{csv}", "--out", str(tmp_path / "x")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "(chance ln 3 = 1.099)" in out and (tmp_path / "x" / "init_mnist_loss.png").is_file()
    assert main(["experiment", "circles", "--data", f"csv:{csv}"]) == 2
    assert "experiment circles has its own data" in capsys.readouterr().err


def test_the_wine_csv_example_runs_and_its_file_is_what_its_script_writes(tmp_path, capsys):
    """docs/guide/own-code.md and data.md: a scikit-learn data set as a CSV study."""
    import runpy
    import shutil

    from hpsearch.cli import main

    example = Path(__file__).resolve().parents[2] / "examples" / "csv"
    copy = tmp_path / "csv"
    shutil.copytree(example, copy)
    runpy.run_path(str(copy / "write_wine_csv.py"))
    assert (copy / "wine.csv").read_bytes() == (example / "wine.csv").read_bytes()
    db = f"sqlite:///{tmp_path / 'w.db'}"
    args = ["run", str(example / "wine.toml"), "--storage", db, "--trials", "6", "--no-progress"]
    assert main(args) == 0
    assert "best validation accuracy" in capsys.readouterr().out
    assert main(["final", "--study", "wine-csv", "--storage", db]) == 0
    out = capsys.readouterr().out
    assert float(out.split("test accuracy ")[1].split()[0]) > 0.8  # three cultivars


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    x=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=40),
    labels=st.lists(st.integers(-3, 3) | st.sampled_from(["a", "b"]), max_size=12),
    columns=st.integers(1, 4),
    compressed=st.booleans(),
)
def test_any_npz_arrays_load_or_fail_with_a_data_error(tmp_path, x, labels, columns, compressed):
    rows = len(x) // columns
    features = np.asarray(x[: rows * columns], dtype=np.float32).reshape(rows, columns)
    save = np.savez_compressed if compressed else np.savez
    path = tmp_path / "any.npz"
    save(path, x=features, y=np.asarray(labels))
    try:
        split = load(f"npz:{path}")
    except DataError as error:
        assert "\n" not in str(error)
    else:
        assert np.isfinite(split.x_train).all() and split.n_classes >= 2


def test_labels_that_are_not_numbers_or_text_are_one_line(tmp_path):
    table = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "label": [{"x": 1}, {"y": 2}, {}, {}]})
    path = write_table(tmp_path / "structs.parquet", table)
    with pytest.raises(DataError, match="labels must be numbers or text, found"):
        load(f"parquet:{path}")


def test_an_npz_member_of_an_unknown_compression_is_one_line(tmp_path):
    path = tmp_path / "odd.npz"
    np.savez(path, x=np.zeros((4, 2)), y=np.arange(4) % 2)
    raw = bytearray(path.read_bytes())
    for offset in (8, raw.rfind(b"PK\x01\x02") + 10):  # local and central headers: method 99
        raw[offset : offset + 2] = (99).to_bytes(2, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="cannot read NPZ file"):
        load(f"npz:{path}")
