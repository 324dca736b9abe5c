"""A feature cell that is not a number is named by its own value and its data row, not
by the column's first value."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hpsearch.cli import main
from hpsearch.data import load
from hpsearch.errors import DataError


def table_with(path: Path, row: int, cell: str, also: int | None = None) -> Path:
    """60 examples of two features and a 0/1 label; feature 'a' of data row `row` (1 =
    the first row after the header) is `cell`, and of data row `also` '?'."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "a": [f"{v:.3f}" for v in rng.normal(size=60)],
            "b": rng.normal(size=60),
            "label": np.arange(60) % 2,
        }
    )
    table.loc[row - 1, "a"] = cell
    if also is not None:
        table.loc[also - 1, "a"] = "?"
    table.to_csv(path, index=False)
    return path


def test_a_decimal_comma_is_named_with_its_row(tmp_path):
    path = table_with(tmp_path / "comma.csv", 37, "1,4")
    assert '"1,4"' in path.read_text().splitlines()[37]  # the header is line 0
    with pytest.raises(DataError) as error:
        load(f"csv:{path}")
    message = str(error.value)
    assert f"{path}: column 'a' is not numeric (e.g. '1,4') in data row 37;" in message
    assert "a decimal comma? write 1.4" in message


def test_the_first_bad_cell_is_named_and_the_others_counted(tmp_path):
    path = table_with(tmp_path / "text.csv", 12, "twelve", also=40)
    with pytest.raises(DataError, match=r"\(e\.g\. 'twelve'\) in data row 12 and 1 other row;"):
        load(f"csv:{path}")


def test_the_command_says_it_in_one_line(tmp_path, capsys):
    path = table_with(tmp_path / "comma.csv", 37, "1,4")
    assert main(["train", "--data", f"csv:{path}", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'1,4') in data row 37" in err, err
