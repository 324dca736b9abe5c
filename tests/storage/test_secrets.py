"""Secrets never reach a file or a screen (issue 31, case 6): against a real PostgreSQL
role whose password holds every character a URL gives a meaning to, a user's workflow
(`run --rounds`, `narrow`, `report`, `final`, then the narrowed round's spec run as
written) prints and writes no trace of the password, nor stores one in the database,
whether it came percent-encoded in the URL, from PGPASSWORD or from a pgpass file."""

import os
import re
import subprocess
import uuid
from urllib.parse import quote, quote_plus

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from hpsearch import spec as spec_module
from tests.support import TINY, hpsearch

# '@ : / # % ?' and spaces, around parts long and random enough that finding one in an
# output or a file (even a PNG's bytes) can only mean a leak.
PASSWORD = "Qx7vKp@Zk9wRt:Jm4tBn/Rp2sWc#50% ?Hy8uDf Lc3nGs"
PARTS = [part for part in re.split(r"[@:/#%? ]", PASSWORD) if len(part) >= 4]
TRACES = [PASSWORD, quote(PASSWORD, safe=""), quote_plus(PASSWORD, safe=""), *PARTS]
TIMEOUT = 120  # seconds per command; each takes a few


@pytest.fixture
def role(postgres_url: str):
    """A LOGIN role with PASSWORD that owns the test database (so it may create Optuna's
    tables in its public schema); yields the role's URL without a password. Roles are
    the server's, not the database's: the role is dropped again at the end."""
    server = make_url(postgres_url)
    name = f"secret_{uuid.uuid4().hex[:12]}"
    admin = server.set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as c:
        c.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(PASSWORD)
            )
        )
        c.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(server.database), sql.Identifier(name)
            )
        )
    yield f"postgresql+psycopg://{name}@{server.host}:{server.port}/{server.database}"
    # Connected to the test database: REASSIGN OWNED takes its tables and the database.
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as c:
        c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [name]
        )
        c.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(name)))
        c.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def with_password(url: str) -> str:
    """The URL with the password in it, percent-encoded as a URL needs."""
    scheme, _, rest = url.partition("://")
    user, _, host = rest.partition("@")
    return f"{scheme}://{user}:{quote(PASSWORD, safe='')}@{host}"


def pgpass_line(url: str) -> str:
    """The ~/.pgpass line for `url`: ':' and '\\' in a field are escaped with '\\'."""
    parsed = make_url(url)
    secret = PASSWORD.replace("\\", "\\\\").replace(":", "\\:")
    return f"{parsed.host}:{parsed.port}:{parsed.database}:{parsed.username}:{secret}\n"


def traces_in(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [trace for trace in TRACES if trace.encode() in data]


@pytest.mark.postgres
def test_no_command_prints_or_writes_the_password(tmp_path, role):
    """One user's workflow, each command given the password one of the ways the guide
    offers: percent-encoded in the URL, then (the written spec's URL has none) from
    PGPASSWORD and from a pgpass file."""
    # The server checks the password: commands that succeed without it in the URL got it.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(role, "not the password").close()
    work = tmp_path / "work"  # the commands' working folder and everything they write
    work.mkdir()
    pgpass = tmp_path / "pgpass"  # holds the password by design: not searched
    pgpass.write_text(pgpass_line(role))
    pgpass.chmod(0o600)  # libpq ignores a pgpass file others may read
    spec = work / "tiny.toml"
    spec.write_text(TINY.format(n_trials=4, sampler="tpe", pruner="none"))
    # Without PGPASSFILE or PGPASSWORD, the URL's password or none at all.
    no_password = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    no_password["PGPASSFILE"] = str(tmp_path / "no-pgpass")
    screens: dict[str, str] = {}

    def start(*args: str, **env: str) -> tuple[str, subprocess.Popen]:
        name = f"{len(screens) + 1}: hpsearch {next(a for a in args if a[0] != '-')}"
        screens[name] = ""
        return name, hpsearch(*args, cwd=work, env=no_password | env)

    def finish(started: tuple[str, subprocess.Popen]) -> str:
        name, process = started
        out, err = process.communicate(timeout=TIMEOUT)
        screens[name] = out + err
        assert process.returncode == 0, f"{name}\n{out}{err}"
        return out

    def command(*args: str, **env: str) -> str:
        return finish(start(*args, **env))

    url = with_password(role)
    quick = ["--epochs", "2", "--workers", "1", "--no-progress"]
    command("-v", "run", str(spec), "--storage", url, "--rounds", "2", "--tolerance", "-1", *quick)
    # The three that start from the finished rounds, at once.
    narrow = start("narrow", "--study", "tiny-r2", "--storage", url, "--out", str(work / "specs"))
    report = start("report", "--study", "tiny-r2", "--storage", url, "--out", str(work / "report"))
    final = start("final", "--study", "tiny-r2", "--storage", url)
    assert "(the password from PGPASSWORD or ~/.pgpass)" in finish(narrow)
    finish(report)
    finish(final)
    # The specs the rounds wrote hold the URL without its password, and the next one
    # runs as it is with the password from the environment alone.
    written = work / "specs" / "tiny-r3.toml"
    assert spec_module.load(work / "tiny-r2.toml").storage == spec_module.load(written).storage
    assert spec_module.load(written).storage == role
    out = command("run", str(written), "--trials", "2", *quick, PGPASSWORD=PASSWORD)
    assert "tiny-r3" in out
    out = command("trials", "--study", "tiny-r3", "--storage", role, PGPASSFILE=str(pgpass))
    assert "COMPLETE" in out

    leaks = {f"output of {name}": traces_in(text) for name, text in screens.items()}
    files = [path for path in work.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"tiny-r2.toml", "tiny-r3.toml", "report.md"}
    leaks |= {str(path): traces_in(path.read_bytes()) for path in files}
    leaks |= {f"table {table}": traces_in(rows) for table, rows in database_text(role).items()}
    assert {where: found for where, found in leaks.items() if found} == {}


def connect(url: str, password: str) -> psycopg.Connection:
    parsed = make_url(url)
    place = {"host": parsed.host, "port": parsed.port, "dbname": parsed.database}
    return psycopg.connect(user=parsed.username, password=password, **place)


def database_text(url: str) -> dict[str, str]:
    """Every table of the database as text (what `pg_dump` would show of its rows)."""
    with connect(url, PASSWORD) as c:
        tables = c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        return {
            table: "\n".join(
                row[0]
                for row in c.execute(
                    sql.SQL("SELECT t::text FROM {} AS t").format(sql.Identifier(table))
                )
            )
            for (table,) in tables
        }


def test_the_password_holds_every_character_a_url_gives_a_meaning_to():
    assert set("@:/#%? ") <= set(PASSWORD) and len(PARTS) == 6
    # A URL that holds it, encoded, is a leak the search finds.
    written = with_password("postgresql+psycopg://alice@db.example.org/hpsearch")
    assert traces_in(written) == [quote(PASSWORD, safe=""), *PARTS]
