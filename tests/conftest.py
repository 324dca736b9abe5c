import os
import uuid

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from hpsearch.data import Split, load

# One BLAS thread in every test process and every process a test starts. `make test` runs
# the suite on two pytest workers (pytest-xdist); OpenBLAS's own threads on top of them
# spin for cores the other worker is using, and made the whole suite slower than one
# worker alone.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"
threadpool_limits(limits=1)

# End-to-end modules: real processes, servers, browsers and whole studies. `pytest -m "not
# slow"` runs the unit tests alone, in well under a minute.
SLOW_MODULES = {
    "test_bench_search",
    "test_cli",
    "test_dashboard",
    "test_dying_workers",
    "test_experiments",
    "test_full_disk",
    "test_objectives",
    "test_outage",
    "test_regression_example",
    "test_rounds",
    "test_sqlite_workers",
    "test_vanished_database",
}

# Modules whose tests kill workers, stop servers or fill disks against heartbeat graces of
# a few seconds: with `--dist loadgroup` (make test) they run one at a time on one pytest
# worker, so two of them never crowd the two cores together while the other worker runs
# everything else.
TIMED_MODULES = {"test_dying_workers", "test_full_disk", "test_outage"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: an end-to-end test (see SLOW_MODULES)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def module(item: pytest.Item) -> str:
        return item.module.__name__.rsplit(".", 1)[-1] if item.module is not None else ""

    for item in items:
        if module(item) in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if module(item) in TIMED_MODULES:
            item.add_marker(pytest.mark.xdist_group("timed"))
    # The timed group runs on one worker from the start, beside the rest on the other:
    # handed out last, it would be a long tail that one worker runs alone.
    items.sort(key=lambda item: module(item) not in TIMED_MODULES)


@pytest.fixture(scope="session")
def mnist() -> Split:
    """mnist-5k with the acceptance split: 1,000 test, 3,200 train, 800 validation."""
    return load("mnist-5k", validation_fraction=0.2, seed=0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def postgres_url() -> str:
    """A new, empty database on the test PostgreSQL server, dropped afterwards."""
    url = os.environ.get("HPSEARCH_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("HPSEARCH_REQUIRE_POSTGRES"):
            pytest.fail("HPSEARCH_REQUIRE_POSTGRES is set but HPSEARCH_TEST_POSTGRES_URL is not")
        pytest.skip(
            "no PostgreSQL server: set HPSEARCH_TEST_POSTGRES_URL (.ci/postgres starts one)"
        )
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(url)
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A new database of each relational kind hpsearch supports (PostgreSQL tests are
    skipped without a server, like `postgres_url`)."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'db.sqlite'}"
