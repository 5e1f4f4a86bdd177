# The README's two quickstart commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench bench-quick bench-intake bench-intake-profile bench-accept-cost bench-vs-sample bench-sideband bench-conversation bench-exactly-once clean

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

bench-intake-profile: $(VENV)/.installed  ## CPU per call of the intake path, split before/in/after the accept (load-independent), on SQLite and PostgreSQL; writes bench/results/intake_profile{,-postgres}.json
	$(BIN)/python bench/intake_profile.py --out bench/results/intake_profile.json
	$(BIN)/python bench/intake_profile.py --database postgres --postgres-url '$(BENCH_POSTGRES_URL)' --out bench/results/intake_profile-postgres.json

bench-accept-cost: $(VENV)/.installed  ## CPU of one accept request: the SDK as callcenter and as the docs' sample call it, vs plain HTTP clients; writes bench/results/accept_cost.json
	$(BIN)/python bench/accept_cost.py --out bench/results/accept_cost.json

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

bench-sideband: $(VENV)/.installed-bench  ## memory and CPU per live call, tool round trip, vs the Agents SDK; writes bench/results/sideband.json
	-$(BIN)/python bench/sideband.py --out bench/results/sideband.json

bench-conversation: $(VENV)/.installed-bench  ## memory per turn and CPU over one call of 200 turns with tools, vs the Agents SDK; writes bench/results/conversation.json
	-$(BIN)/python bench/conversation.py --out bench/results/conversation.json

BENCH_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

bench-exactly-once: $(VENV)/.installed  ## 1,000 calls x 5 concurrent webhook copies over 4 workers -> one accept each, on SQLite and PostgreSQL; writes bench/results/exactly_once-{sqlite,postgres}.json
	$(BIN)/python bench/exactly_once.py --calls 1000 --copies 5 --workers 4 --database sqlite --out bench/results/exactly_once-sqlite.json
	$(BIN)/python bench/exactly_once.py --calls 1000 --copies 5 --workers 4 --database postgres --postgres-url '$(BENCH_POSTGRES_URL)' --out bench/results/exactly_once-postgres.json

bench: $(VENV)/.installed-bench  ## every benchmark (7 min quiet, ~13 busy), then docs/benchmarks.md with tables and plots (a bench that fails still leaves its JSON; the report goes on)
	-$(BIN)/python bench/intake.py --out bench/results/intake.json
	-$(BIN)/python bench/intake_vs_sample.py --out bench/results/intake_vs_sample.json
	-$(BIN)/python bench/intake_profile.py --out bench/results/intake_profile.json
	-$(BIN)/python bench/intake_profile.py --database postgres --postgres-url '$(BENCH_POSTGRES_URL)' --out bench/results/intake_profile-postgres.json
	-$(BIN)/python bench/accept_cost.py --out bench/results/accept_cost.json
	-$(BIN)/python bench/sideband.py --out bench/results/sideband.json
	-$(BIN)/python bench/conversation.py --out bench/results/conversation.json
	$(BIN)/python bench/report.py

bench-quick: $(VENV)/.installed-bench  ## the same, shorter (~4 min): fewer calls, steps and repeats
	-$(BIN)/python bench/intake.py --seconds 3 --out bench/results/intake.json
	-$(BIN)/python bench/intake_vs_sample.py --quick --out bench/results/intake_vs_sample.json
	-$(BIN)/python bench/intake_profile.py --calls 100 --rounds 3 --out bench/results/intake_profile.json
	-$(BIN)/python bench/intake_profile.py --calls 100 --rounds 3 --database postgres --postgres-url '$(BENCH_POSTGRES_URL)' --out bench/results/intake_profile-postgres.json
	-$(BIN)/python bench/accept_cost.py --rounds 3 --out bench/results/accept_cost.json
	-$(BIN)/python bench/sideband.py --levels 500 --batch 50 --out bench/results/sideband.json
	-$(BIN)/python bench/conversation.py --turns 100 --every 20 --out bench/results/conversation.json
	$(BIN)/python bench/report.py

bench-vs-sample: $(VENV)/.installed-bench  ## callcenter against the docs' minimal sample: interleaved latency, saturation, start-up
	$(BIN)/python bench/intake_vs_sample.py --out bench/results/intake_vs_sample.json

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
