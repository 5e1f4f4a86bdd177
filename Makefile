# The README's two quickstart commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench-intake bench-sideband bench-exactly-once clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed  ## set up and run the whole loop on this machine, no OpenAI account needed
	$(BIN)/callcenter demo $(DEMO_ARGS)

test: $(VENV)/.installed-dev  ## set up the dev dependencies and run the whole test suite, one worker per core
	$(BIN)/python -m pytest -n auto --dist worksteal

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench-intake: $(VENV)/.installed  ## webhook -> accept latency at 100 calls/s; writes bench/results/intake.json
	$(BIN)/python bench/intake.py --out bench/results/intake.json

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

bench-sideband: $(VENV)/.installed-bench  ## memory per live call and tool round trip, vs the Agents SDK; writes bench/results/sideband.json
	$(BIN)/python bench/sideband.py --out bench/results/sideband.json

BENCH_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

bench-exactly-once: $(VENV)/.installed  ## 1,000 calls x 5 concurrent webhook copies over 4 workers -> one accept each, on SQLite and PostgreSQL; writes bench/results/exactly_once-{sqlite,postgres}.json
	$(BIN)/python bench/exactly_once.py --calls 1000 --copies 5 --workers 4 --database sqlite --out bench/results/exactly_once-sqlite.json
	$(BIN)/python bench/exactly_once.py --calls 1000 --copies 5 --workers 4 --database postgres --postgres-url '$(BENCH_POSTGRES_URL)' --out bench/results/exactly_once-postgres.json

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
