PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Benchmarks run in what `pip install costsync` gives a user: no test or dbt
# extras (those bring pandas, which pyarrow then loads into every sync).
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
# The BigQuery emulator the BigQuery tests load into: a test tool in its own
# virtualenv. DuckDB looks for extensions under $HOME/.duckdb, so the spatial
# extension it loads at start goes into $(BQEMU_HOME), the HOME the tests run it with.
BQEMU_VENV := .venv-bqemulator
BQEMU_STAMP := $(BQEMU_VENV)/.installed
BQEMU_HOME := $(CURDIR)/$(BQEMU_VENV)/home
# The FinOps Foundation's FOCUS validator needs Python >= 3.12 and pins numpy<2.
FOCUS_PYTHON ?= PYENV_VERSION=3.12.1 python3.12
FOCUS_VENV := .venv-focus
FOCUS_REQUIREMENTS := tests/focus-validator-requirements.txt
FOCUS_STAMP := $(FOCUS_VENV)/.installed
# Airflow pins many libraries: the DAG is tested in a virtualenv of its own with
# costsync (no dbt or test extras), Airflow and pytest, every version pinned.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_CONSTRAINTS := tests/airflow-constraints.txt
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

.PHONY: test test-airflow demo bench dbt focus-check lint format clean

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

$(BQEMU_STAMP): tests/bqemulator-requirements.txt
	$(PYTHON) -m venv $(BQEMU_VENV)
	$(BQEMU_VENV)/bin/pip install --quiet --upgrade pip
	$(BQEMU_VENV)/bin/pip install --quiet -r tests/bqemulator-requirements.txt
	mkdir -p $(BQEMU_HOME)
	HOME=$(BQEMU_HOME) $(BQEMU_VENV)/bin/python -c "import duckdb, duckdb_extension_spatial, pathlib; \
		[path] = pathlib.Path(duckdb_extension_spatial.__file__).parent.glob('extensions/*/spatial.duckdb_extension'); \
		duckdb.install_extension(str(path)); duckdb.load_extension('spatial')"
	touch $(BQEMU_STAMP)

$(FOCUS_STAMP): $(FOCUS_REQUIREMENTS)
	$(FOCUS_PYTHON) -m venv $(FOCUS_VENV)
	$(FOCUS_VENV)/bin/pip install --quiet --upgrade pip
	$(FOCUS_VENV)/bin/pip install --quiet -r $(FOCUS_REQUIREMENTS)
	touch $(FOCUS_STAMP)

$(AIRFLOW_STAMP): pyproject.toml $(AIRFLOW_CONSTRAINTS)
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/pip install --quiet -c $(AIRFLOW_CONSTRAINTS) -e '.[airflow]' pytest
	touch $(AIRFLOW_STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint $(BQEMU_STAMP)
	$(BIN)/pytest -m "not focus and not airflow"

# The DAG `costsync` (pipelines/airflow_dag.py) parsed and run by Airflow (tests/test_airflow_dag.py).
test-airflow: $(AIRFLOW_STAMP)
	$(AIRFLOW_VENV)/bin/pytest -m airflow tests/test_airflow_dag.py

demo: $(STAMP)
	$(BIN)/costsync demo

bench: $(BENCH_STAMP) $(STAMP)
	$(BENCH_VENV)/bin/python benchmarks/bench.py --scale-rows 5000000
	@echo "== the same throughput and reference ratios with the test extras (pandas present) =="
	$(BIN)/python benchmarks/bench.py --sections throughput --destinations duckdb,postgres

dbt: $(STAMP)
	$(BIN)/dbt build --project-dir dbt --profiles-dir dbt --target duckdb

# `costsync demo`, then the FOCUS validator on analytics.focus_costs (tests/test_focus_validator.py).
focus-check: $(STAMP) $(FOCUS_STAMP)
	$(BIN)/pytest -m focus -rP tests/test_focus_validator.py

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(BQEMU_VENV) $(FOCUS_VENV) $(AIRFLOW_VENV) .pytest_cache .ruff_cache dbt/target dbt/logs
