# The two front doors: `make run` (build the warehouse from sample_logs and print the rollups) and `make test` (lint,
# then the full suite, as CI runs it). `make test-fast` is the inner loop: the suite without the e2e and slow tests.
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export GX_ANALYTICS_ENABLED := false

.PHONY: setup run lint test test-fast manifest bench bench-fleet bench-history bench-publish bench-spark compare-engines clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

run: manifest
	$(BIN)/infercost demo

# @dbt_assets reads dbt's manifest at import time: prepare it before anything imports the definitions, again only
# when a dbt file (or the installed packages) changed since, the rule `infercost` itself applies
DBT_SOURCES := $(shell find dbt/models dbt/macros dbt/tests -type f) dbt/dbt_project.yml dbt/profiles.yml
dbt/target/manifest.json: $(VENV)/.installed $(DBT_SOURCES)
	$(BIN)/dagster-dbt project prepare-and-package --file pipelines/dbt_project.py
	touch $@

manifest: dbt/target/manifest.json

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# the full suite, what CI runs (.ci/run)
test: lint manifest
	$(BIN)/python -m pytest

# the inner loop (under 3 minutes): no e2e pipeline runs, nothing marked slow; lint with `make lint`
test-fast: manifest
	$(BIN)/python -m pytest -m "not e2e and not slow"

# the kernel against exact DuckDB SQL and the floor, side by side (SCALE=S|M|L)
SCALE ?= M
bench: setup
	$(BIN)/infercost bench --scale $(SCALE)

# raw files to published marts for a generated fleet-day of DEVICES accelerators (data written once, ~20 min)
DEVICES ?= 1000
bench-fleet: manifest
	$(BIN)/infercost bench --fleet-day --devices $(DEVICES)

# the daily run on day 1 and on day DAYS of a fresh warehouse (64 accelerators), side by side
DAYS ?= 10
bench-history: manifest
	$(BIN)/infercost bench --history --devices 64 --days $(DAYS)

# publishing and the technique comparison as the history grows to LENGTHS days (bench-history's day 1, grown)
LENGTHS ?= 1,10,30,60
bench-publish: setup
	$(BIN)/infercost bench --publish-history --devices 64 --lengths $(LENGTHS)

# the spark engine beside the duckdb engine on a generated fleet-day of SPARK_DEVICES accelerators, on a local
# cluster of 1 and then 2 executors: per-step times, rows/s/core, the sizing for 10,000 accelerators
SPARK_DEVICES ?= 32
bench-spark: setup
	$(BIN)/python -m pipelines.devtools.bench.spark_bench --devices $(SPARK_DEVICES)

# both engines on a generated 3-day, 64-accelerator fleet, materialized from the same raw files: every mart compared
compare-engines: manifest
	$(BIN)/python -m pipelines.devtools.bench.engine_marts --devices 64 --days 3

clean:
	rm -rf .infercost dbt/target dbt/logs .pytest_cache
