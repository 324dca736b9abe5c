# The two commands of the README: `make study` and `make test`.
# Each creates .venv on first use and reinstalls only when pyproject.toml or
# requirements.lock changed, so a second run goes straight to the work.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -c requirements.lock
# Bytecode for every installed package and hpsearch itself, compiled on all cores (pip compiles on one). Without
# it, a machine with PYTHONDONTWRITEBYTECODE set compiles what each process imports, every
# time. A file that does not compile only costs speed, as with pip's own step.
COMPILE := $(BIN)/python -m compileall -qq -j 0 $(VENV)/lib hpsearch || true

.PHONY: study test bench bench-search lint format clean

study: $(VENV)/.installed
	$(BIN)/python scripts/run_study.py $(ARGS)

# Two pytest workers (pytest-xdist; TEST_JOBS=1 for one). Tests that time heartbeats run
# one at a time on one of them (tests/conftest.py, TIMED_MODULES).
TEST_JOBS ?= 2
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup $(PYTEST_ARGS)

# Not part of `make test`: minutes of measurement, printed as ratios with PASS/FAIL. Without
# ARGS it also renders docs/benchmarks.md from the results file the run wrote;
# ARGS="--quick" for a short run, ARGS="--render" to render only (from the newest results).
bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench speed $(or $(ARGS),--docs)

# Not part of `make test`: search strategies on every task in bench/tasks, 5 report seeds,
# against each task's oracle (docs/search-quality.md gives its time on two cores). Without
# ARGS it also renders docs/search-quality.md from the results;
# ARGS="--tasks my.toml --strategies default,random-100 --seeds 3 --out DIR" for your own.
bench-search: $(VENV)/.installed
	$(BIN)/python -m bench search $(or $(ARGS),--docs)

$(VENV)/.installed-bench: pyproject.toml requirements.lock | $(BIN)/python
	$(PIP) -e '.[bench,dashboard]'
	$(COMPILE)
	touch $@

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "hpsearch needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(PIP) -e '.[dashboard]'
	$(COMPILE)
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements.lock | $(BIN)/python
	$(PIP) -e '.[dev,dashboard]'
	$(COMPILE)
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
