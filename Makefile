PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Benchmarks run in what `pip install costsync` gives a user: no test or dbt
# extras (those bring pandas, which pyarrow then loads into every sync).
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: test demo bench dbt lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -e .
	touch $(BENCH_STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/costsync demo

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/bench.py --scale-rows 5000000

dbt: $(STAMP)
	$(BIN)/dbt build --project-dir dbt --profiles-dir dbt --target duckdb

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .ruff_cache dbt/target dbt/logs
