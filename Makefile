# The two set-up commands of the README. Both create .venv on first use.
VENV ?= .venv
PYTHON ?= python3

.PHONY: demo test check bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed  ## a sync against the bundled simulators, on SQLite
	$(VENV)/bin/hirebridge demo

test: $(VENV)/.installed  ## every test, on SQLite and a throw-away PostgreSQL (and Chromium)
	scripts/ensure-chromium
	scripts/with-postgres $(VENV)/bin/pytest

check: $(VENV)/.installed  ## ruff and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(VENV)/.installed  ## the benchmarks, at their default sizes
	$(VENV)/bin/python bench/offer_sync.py
	$(VENV)/bin/python bench/mapping.py
	$(VENV)/bin/python bench/inbound.py
	$(VENV)/bin/python bench/documents.py
