# The two commands of the README: `make run` starts the daemon, `make test` runs the whole suite.
# `make test` lints (ruff) and type-checks (mypy, configured in pyproject.toml) before the tests.
# Both create .venv and install what they need the first time (and again when pyproject.toml changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/default.toml
PYTEST_ARGS ?=
# One pytest worker per core (pytest-xdist); each worker gets its own PostgreSQL database (tests/conftest.py).
PYTEST_WORKERS ?= auto

.PHONY: run test demo install clean

run: $(VENV)/.installed
	$(BIN)/flarewatch run --config $(CONFIG)

demo: $(VENV)/.installed
	$(BIN)/flarewatch demo

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info
