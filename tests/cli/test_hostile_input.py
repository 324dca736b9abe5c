"""Hostile input through the `hpsearch` command: untrusted names work and read back
unchanged; everything else is refused with one line on stderr, exit code 2, and the
existing database left byte for byte as it was."""

import gc
import gzip
import hashlib
import shutil
import sqlite3
import struct
from pathlib import Path

import numpy as np
import optuna
import pytest
import tomli_w

from hpsearch.cli import main
from tests.support import TINY

HOSTILE_NAMES = [
    "it's; DROP TABLE studies;--",
    "Robert'); DROP TABLE trials; --",
    "测试 ✓",
    'say "hi" \\ C:\\path\\ \\"',
    "tab\tand\nnewline",
    "%s %(name)s {0} {spec.name}",
    "NULL",
    " leading and trailing spaces ",
    "🚀" * 512,  # the longest name Optuna keeps (512 characters)
]
QUICK = ["--trials", "2", "--epochs", "1", "--workers", "1", "--no-progress"]


def tiny_text(**changes: str) -> str:
    text = TINY.format(n_trials=2, sampler="tpe", pruner="none")
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    return text


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def fingerprint(db: Path) -> dict[str, str]:
    """sha256 of the database file and of its -wal file when there is one."""
    files = [db, db.with_name(db.name + "-wal")]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.exists()}


def settle(db: Path) -> None:
    """Close this process's connections and fold any WAL into the database file, so that
    the file's bytes are the whole database and a read cannot change them."""
    gc.collect()
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    wal = db.with_name(db.name + "-wal")
    if wal.exists() and wal.stat().st_size == 0:
        wal.unlink()


@pytest.fixture(scope="module")
def made_by_hpsearch(tmp_path_factory) -> Path:
    """A real study database: study 'tiny' with two trials, made by `hpsearch run`."""
    folder = tmp_path_factory.mktemp("made")
    db = folder / "studies.db"
    spec = write(folder / "tiny.toml", tiny_text())
    assert main(["run", str(spec), "--storage", f"sqlite:///{db}", *QUICK]) == 0
    settle(db)
    return db


@pytest.fixture
def existing(tmp_path, made_by_hpsearch) -> Path:
    db = tmp_path / "existing.db"
    shutil.copyfile(made_by_hpsearch, db)
    return db


def refused(args: list[str], capsys, message: str) -> str:
    """Run the command; it must exit 2 with one stderr line that holds `message`."""
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("hpsearch: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert "Traceback" not in err
    return err


# -- names that simply work -----------------------------------------------------------


def test_hostile_study_names_run_and_read_back_unchanged(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'names.db'}"
    spec = write(tmp_path / "tiny.toml", tiny_text())
    for name in HOSTILE_NAMES:
        assert main(["run", str(spec), "--study", name, "--storage", storage, *QUICK]) == 0
        study = optuna.load_study(study_name=name, storage=storage)
        assert study.study_name == name
        assert study.user_attrs["spec"]["name"] == name
        assert len(study.trials) == 2
        capsys.readouterr()
        assert main(["trials", "--study", name, "--storage", storage]) == 0
        out = capsys.readouterr().out
        # what the value is, the header and two trials
        assert len(out.splitlines()) == 4 and "COMPLETE" in out
        # Running it again finds the same study: nothing was split or escaped on the way.
        assert main(["run", str(spec), "--study", name, "--storage", storage, *QUICK]) == 0
        assert len(optuna.load_study(study_name=name, storage=storage).trials) == 2
    assert sorted(optuna.get_all_study_names(storage)) == sorted(HOSTILE_NAMES)
    db = tmp_path / "names.db"
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = [row[0] for row in connection.execute("SELECT study_name FROM studies")]
    connection.close()
    assert sorted(stored) == sorted(HOSTILE_NAMES)


def test_hostile_names_work_from_the_spec_file_too(tmp_path):
    storage = f"sqlite:///{tmp_path / 'names.db'}"
    for number, name in enumerate(HOSTILE_NAMES[:4]):
        text = tiny_text(**{'name = "tiny"': tomli_w.dumps({"name": name}).strip()})
        spec = write(tmp_path / f"spec{number}.toml", text)
        assert main(["run", str(spec), "--storage", storage, *QUICK]) == 0
        assert optuna.load_study(study_name=name, storage=storage).study_name == name


# -- refused, one line, exit 2, the database untouched ----------------------------------

SPEC_CASES = {
    "name of 513 characters": (
        tiny_text(**{'name = "tiny"': 'name = "' + "x" * 513 + '"'}),
        "name: must be 1 to 512 characters, got 513",
    ),
    "1e400 in a range": (
        tiny_text(**{"low = 1e-3\nhigh = 1.0": "low = 1e-3\nhigh = 1e400"}),
        "search.params.lr.high: must be a finite number, got inf",
    ),
    "nan in a range": (
        tiny_text(**{"low = 1e-3\nhigh = 1.0": "low = nan\nhigh = 1.0"}),
        "search.params.lr.low: must be a finite number, got nan",
    ),
    "inf in a range": (
        tiny_text(**{"low = 1e-8\nhigh = 1e-2": "low = 1e-8\nhigh = inf"}),
        "search.params.weight_decay.high: must be a finite number, got inf",
    ),
    "-inf in a linear range": (
        tiny_text() + "[search.params.dropout]\nlow = -inf\nhigh = 0.5\n",
        "search.params.dropout.low: must be a finite number, got -inf",
    ),
    "nan among choices": (
        tiny_text() + "[search.params.dropout]\nchoices = [0.0, nan]\n",
        "search.params.dropout.choices: must be a finite number, got nan",
    ),
    "nan as a fixed setting": (
        tiny_text(**{"epochs = 4": "epochs = 4\nlr = nan"}),
        "training.lr: must be a finite number, got nan",
    ),
    "nan in sampler options": (
        tiny_text(
            **{'sampler = "tpe"': 'sampler = "tpe"\nsampler_options = {n_startup_trials = nan}'}
        ),
        "search.sampler_options.n_startup_trials: must be a finite number, got nan",
    ),
    "huge hidden width range": (
        tiny_text()
        + "[search.params.hidden_width]\nlow = 1\nhigh = 1_000_000_000_000\nlog = true\n",
        "search.params.hidden_width.high: must be <= 65536, got 1000000000000",
    ),
    "huge hidden layer": (
        tiny_text(**{"hidden_sizes = [32, 32]": "hidden_sizes = [32, 100_000_000_000]"}),
        "model.hidden_sizes: a hidden layer has at most 65536 units, got 100000000000",
    ),
    "huge seed": (
        tiny_text(**{"seed = 0": "seed = 9_223_372_036_854_775_807"}),
        "seed: must be <= 4294967295, got 9223372036854775807",
    ),
    "step that cuts a range into 1e300 points": (
        tiny_text() + "[search.params.dropout]\nlow = 0.0\nhigh = 0.5\nstep = 1e-300\n",
        "search.params.dropout.step: 1e-300 cuts the range into more than 1e+12 points",
    ),
    "negative log bound": (
        tiny_text(**{"low = 1e-8\nhigh = 1e-2": "low = -1e-8\nhigh = 1e-2"}),
        "search.params.weight_decay.low: must be >= 0, got -1e-08",
    ),
}


@pytest.mark.parametrize("case", sorted(SPEC_CASES))
def test_hostile_spec_is_refused_before_the_database(tmp_path, capsys, existing, case):
    text, message = SPEC_CASES[case]
    spec = write(tmp_path / "hostile.toml", text)
    before = fingerprint(existing)
    err = refused(["run", str(spec), "--storage", f"sqlite:///{existing}", *QUICK], capsys, message)
    assert str(spec) in err
    assert fingerprint(existing) == before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--study", "n" * 513], "name: must be 1 to 512 characters, got 513"),
        (["--study", ""], "name: must be 1 to 512 characters, got 0"),
        (["--study", "bad\udcffbyte"], "name: must be valid UTF-8 text, got 'bad\\udcffbyte'"),
        (["--timeout", "inf"], "search.timeout: must be a finite number, got inf"),
        (["--timeout", "nan"], "search.timeout: must be a finite number, got nan"),
        (["--timeout", "1e400"], "search.timeout: must be a finite number, got inf"),
        (["--seed", str(2**64)], f"seed: must be <= 4294967295, got {2**64}"),
        (["--trials", str(-(2**70))], f"search.n_trials: must be >= 1, got {-(2**70)}"),
    ],
)
def test_hostile_command_line_values_are_refused(tmp_path, capsys, existing, options, message):
    spec = write(tmp_path / "tiny.toml", tiny_text())
    before = fingerprint(existing)
    refused(
        ["run", str(spec), "--storage", f"sqlite:///{existing}", *QUICK, *options], capsys, message
    )
    assert fingerprint(existing) == before


def test_a_message_with_a_newline_in_a_path_stays_one_line(tmp_path, capsys):
    spec = write(tmp_path / "two\nlines.toml", "[search]\nn_trials = 0\n")
    err = refused(["run", str(spec)], capsys, "search.n_trials: must be >= 1")
    assert "two\\nlines.toml" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"some notes that must survive\n", "is not an SQLite database"),
        (bytes(range(256)) * 64, "is not an SQLite database"),
        (gzip.compress(b"SQLite format 3\0" * 100, mtime=0), "is not an SQLite database"),
        (b"SQLite format 3\0" + b"\xff" * 4000, "is not an SQLite database"),
    ],
)
def test_a_file_that_is_not_sqlite_is_refused_and_kept(tmp_path, capsys, content, message):
    target = tmp_path / "some.txt"
    target.write_bytes(content)
    spec = write(tmp_path / "tiny.toml", tiny_text())
    for command in (
        ["run", str(spec), "--storage", f"sqlite:///{target}", *QUICK],
        ["trials", "--study", "tiny", "--storage", f"sqlite:///{target}"],
        ["final", "--study", "tiny", "--storage", f"sqlite:///{target}"],
    ):
        refused(command, capsys, message)
        assert target.read_bytes() == content
        assert sorted(p.name for p in tmp_path.iterdir()) == ["some.txt", "tiny.toml"]


def test_another_programs_sqlite_database_is_refused_and_kept(tmp_path, capsys):
    db = tmp_path / "addresses.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE people (name TEXT, email TEXT)")
        connection.execute("INSERT INTO people VALUES ('Ada', 'ada@example.org')")
    connection.close()
    before = fingerprint(db)
    spec = write(tmp_path / "tiny.toml", tiny_text())
    refused(
        ["run", str(spec), "--storage", f"sqlite:///{db}", *QUICK],
        capsys,
        f"{db} is an SQLite database of another program (tables: people), not an Optuna one",
    )
    assert fingerprint(db) == before


def make_plain_optuna_db(path: Path) -> None:
    """A database as plain Optuna makes it (rollback journal, not WAL), with one trial."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    study = optuna.create_study(study_name="tiny", storage=storage)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    storage.engine.dispose()
    del study, storage
    gc.collect()


def set_schema(db: Path, revision: str, schema_version: int, library: str) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        connection.execute(
            "UPDATE version_info SET schema_version = ?, library_version = ?",
            (schema_version, library),
        )
    connection.close()
    settle(db)


@pytest.mark.parametrize(
    ("maker", "revision", "schema_version", "library"),
    [
        ("hpsearch", "v3.0.0.d", 12, "3.1.0"),  # an older release of the same schema number
        ("hpsearch", "v2.4.0.a", 11, "2.4.0"),
        ("optuna", "v1.3.0.a", 12, "1.3.0"),
        ("optuna", "v9.0.0.a", 13, "9.0.0"),  # a newer Optuna than this one
    ],
)
def test_a_database_of_another_optuna_schema_is_refused_untouched(
    tmp_path, capsys, made_by_hpsearch, maker, revision, schema_version, library
):
    db = tmp_path / "other.db"
    if maker == "hpsearch":
        shutil.copyfile(made_by_hpsearch, db)
    else:
        make_plain_optuna_db(db)
    if revision == "v1.3.0.a":
        # Optuna 1.3 had no trial_heartbeats table: Optuna itself would create it on open.
        with sqlite3.connect(db) as connection:
            connection.execute("DROP TABLE trial_heartbeats")
        connection.close()
    set_schema(db, revision, schema_version, library)
    before = fingerprint(db)
    with sqlite3.connect(db) as connection:
        tables_before = connection.execute("SELECT name, sql FROM sqlite_master").fetchall()
    connection.close()
    spec = write(tmp_path / "tiny.toml", tiny_text())
    storage = f"sqlite:///{db}"
    message = f"{db} was made by Optuna {library} (schema {revision}); Optuna {optuna.__version__}"
    for command in (
        ["run", str(spec), "--storage", storage, *QUICK],
        ["trials", "--study", "tiny", "--storage", storage],
        ["final", "--study", "tiny", "--storage", storage],
        ["narrow", "--study", "tiny", "--storage", storage, "--out", str(tmp_path)],
    ):
        err = refused(command, capsys, message)
        assert "leaves it untouched" in err
        assert fingerprint(db) == before, command
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT name, sql FROM sqlite_master").fetchall() == tables_before
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (revision,)
        ]
    connection.close()


# -- data files -------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, *, count: int | None = None) -> bytes:
    """An IDX file of unsigned bytes; `count` overrides the length its header declares."""
    shape = (len(array) if count is None else count, *array.shape[1:])
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *shape)
    return header + array.astype(np.uint8).tobytes()


def idx_folder(root: Path, *, gz: bool, **replace: bytes) -> Path:
    """A small MNIST-format folder; `replace` swaps a file's bytes (key: train_images …)."""
    rng = np.random.default_rng(0)
    root.mkdir()
    suffix = ".gz" if gz else ""
    files = {
        "train_images": ("train-images-idx3-ubyte", rng.integers(0, 256, (60, 4, 5))),
        "train_labels": ("train-labels-idx1-ubyte", np.arange(60) % 3),
        "test_images": ("t10k-images-idx3-ubyte", rng.integers(0, 256, (20, 4, 5))),
        "test_labels": ("t10k-labels-idx1-ubyte", np.arange(20) % 3),
    }
    for key, (stem, array) in files.items():
        payload = replace.get(key, idx_bytes(array))
        (root / (stem + suffix)).write_bytes(gzip.compress(payload) if gz else payload)
    return root


def idx_spec(tmp_path: Path, folder: Path) -> Path:
    data = tomli_w.dumps({"name": f"idx:{folder}"}).strip()
    text = tiny_text(**{'name = "digits"': data, "batch_size = 50": "batch_size = 10"})
    return write(tmp_path / "idx.toml", text)


IMAGES = np.random.default_rng(1).integers(0, 256, (60, 4, 5))
DATA_CASES = {
    "header promises more images": (
        {"train_images": idx_bytes(IMAGES, count=61)},
        "train-images-idx3-ubyte{gz}: truncated IDX file: header promises 1220 bytes of data "
        "for shape (61, 4, 5), found 1200",
    ),
    "header promises a billion images": (
        {"train_images": idx_bytes(IMAGES, count=1_000_000_000)},
        "truncated IDX file: header promises 20000000000 bytes of data",
    ),
    "file cut inside the header": (
        {"test_labels": idx_bytes(np.arange(20))[:6]},
        "t10k-labels-idx1-ubyte{gz}: truncated IDX header",
    ),
    "empty images file": ({"train_images": b""}, "train-images-idx3-ubyte{gz} is empty"),
    "empty labels file": ({"test_labels": b""}, "t10k-labels-idx1-ubyte{gz} is empty"),
    "no images at all": (
        {
            "train_images": idx_bytes(IMAGES[:0]),
            "train_labels": idx_bytes(np.arange(0)),
        },
        "train-images-idx3-ubyte{gz} holds no images",
    ),
}


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_broken_data_files_are_refused_before_the_database(tmp_path, capsys, existing, case, gz):
    replace, message = DATA_CASES[case]
    folder = idx_folder(tmp_path / "idx data", gz=gz, **replace)
    spec = idx_spec(tmp_path, folder)
    before = fingerprint(existing)
    args = ["run", str(spec), "--study", "idx", "--storage", f"sqlite:///{existing}", *QUICK]
    refused(args, capsys, message.format(gz=".gz" if gz else ""))
    assert fingerprint(existing) == before
    assert optuna.get_all_study_names(f"sqlite:///{existing}") == ["tiny"]


def test_an_intact_idx_folder_runs(tmp_path):
    """The broken folders above differ from this one only in the broken file."""
    folder = idx_folder(tmp_path / "idx data", gz=True)
    spec = idx_spec(tmp_path, folder)
    storage = f"sqlite:///{tmp_path / 'idx.db'}"
    assert main(["run", str(spec), "--storage", storage, "--study", "idx", *QUICK]) == 0


def test_train_with_an_empty_data_file_gives_one_line(tmp_path, capsys):
    folder = idx_folder(tmp_path / "idx", gz=False, test_images=b"")
    refused(["train", "--data", f"idx:{folder}", "--epochs", "1"], capsys, "is empty")


def test_a_spec_file_that_is_not_text_is_refused(tmp_path, capsys, existing):
    spec = tmp_path / "binary.toml"
    spec.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    before = fingerprint(existing)
    refused(["run", str(spec), "--storage", f"sqlite:///{existing}"], capsys, "cannot read spec")
    assert fingerprint(existing) == before


# -- users' data files (csv:, npz:, parquet:) ------------------------------------------------

TABLE_CASES = {
    "missing": (None, "does not exist"),
    "empty": (b"", "is empty"),
    "no label column": (b"a,b,y\n1,2,0\n", "has no label column 'label'"),
    "non-numeric feature": (b"a,b,label\n1,red,0\n2,blue,1\n", "column 'b' is not numeric"),
    "NaN": (b"a,b,label\n1,nan,0\n2,3,1\n", "column 'b' is missing or NaN in data row 1"),
    "inf": (b"a,b,label\n1,2,0\n2,-inf,1\n", "column 'b' is -inf in data row 2"),
    "one class": (b"a,b,label\n1,2,x\n2,3,x\n", "has one class only ('x')"),
    "too few examples": (b"a,b,label\n1,2,x\n2,3,y\n3,4,y\n", "3 examples for 2 classes"),
    "not text": (b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00", "cannot read CSV file"),
}


def table_spec(tmp_path: Path, data: str, extra: str = 'label = "label"') -> Path:
    text = tiny_text(**{'name = "digits"': f"{tomli_w.dumps({'name': data}).strip()}\n{extra}"})
    return write(tmp_path / "table.toml", text.replace("batch_size = 50", "batch_size = 2"))


@pytest.mark.parametrize("case", sorted(TABLE_CASES))
def test_broken_tables_are_refused_before_the_database(tmp_path, capsys, existing, case):
    content, message = TABLE_CASES[case]
    path = tmp_path / "table.csv"
    if content is not None:
        path.write_bytes(content)
    spec = table_spec(tmp_path, f"csv:{path}")
    before = fingerprint(existing)
    args = ["run", str(spec), "--study", "table", "--storage", f"sqlite:///{existing}", *QUICK]
    refused(args, capsys, message)
    assert fingerprint(existing) == before


def test_a_test_file_of_other_columns_is_refused_before_the_database(tmp_path, capsys, existing):
    rows = "".join(f"{i},{i % 3},{'xyz'[i % 3]}\n" for i in range(30))
    (tmp_path / "train.csv").write_text("a,b,label\n" + rows)
    (tmp_path / "test.csv").write_text("a,c,label\n" + rows)
    spec = table_spec(tmp_path, "csv:train.csv", 'label = "label"\ntest = "test.csv"')
    before = fingerprint(existing)
    args = ["run", str(spec), "--study", "table", "--storage", f"sqlite:///{existing}", *QUICK]
    refused(args, capsys, "has columns [a, c, label]")
    assert fingerprint(existing) == before


def test_a_data_file_changed_after_its_study_started_is_refused(tmp_path, capsys):
    rows = [f"{i % 7},{(i * 3) % 5},{'xyz'[i % 3]}\n" for i in range(60)]
    table = tmp_path / "table.csv"
    table.write_text("a,b,label\n" + "".join(rows))
    spec = table_spec(tmp_path, "csv:table.csv")
    db = tmp_path / "t.db"
    args = ["run", str(spec), "--study", "table", "--storage", f"sqlite:///{db}", *QUICK]
    assert main(args) == 0
    table.write_text("a,b,label\n" + "".join(rows[:-1]) + "9,9,x\n")  # same size, one row
    settle(db)
    before = fingerprint(db)
    more = [*args[: -len(QUICK)], "--trials", "4", *QUICK[2:]]
    refused(more, capsys, f"data file {table} changed since study 'table' started (sha256 ")
    refused(["final", "--study", "table", "--storage", f"sqlite:///{db}"], capsys, "changed")
    settle(db)  # opening it made an empty WAL file: nothing was written
    assert fingerprint(db) == before


@pytest.mark.parametrize("name", ["a/b", "../../escaped", "/abs/olute"])
def test_a_study_name_never_becomes_a_path(tmp_path, capsys, monkeypatch, name):
    storage = f"sqlite:///{tmp_path / 'names.db'}"
    spec = write(tmp_path / "tiny.toml", tiny_text())
    assert main(["run", str(spec), "--study", name, "--storage", storage, *QUICK]) == 0
    out = tmp_path / "out" / "specs"
    assert main(["narrow", "--study", name, "--storage", storage, "--out", str(out)]) == 0
    written = list(out.iterdir())
    assert len(written) == 1 and written[0].suffix == ".toml", written
    # The round's study keeps the name as data: the file, read back, names it exactly.
    assert f"{name}-r2" in written[0].read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path / "out")
    assert main(["report", "--study", name, "--storage", storage]) == 0
    reports = [p for p in (tmp_path / "out" / "reports").iterdir()]
    assert len(reports) == 1 and (reports[0] / "report.md").exists()
    everything = {p.resolve() for p in tmp_path.rglob("*")}
    assert all(tmp_path.resolve() in p.parents for p in everything)
    capsys.readouterr()
