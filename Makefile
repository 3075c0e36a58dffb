# The two front doors: `make run` (build the warehouse from sample_logs and print the rollups) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export GX_ANALYTICS_ENABLED := false

.PHONY: setup run test manifest bench bench-fleet clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

run: manifest
	$(BIN)/infercost demo

# @dbt_assets reads dbt's manifest at import time: prepare it before anything imports the definitions
manifest: setup
	$(BIN)/dagster-dbt project prepare-and-package --file pipelines/dbt_project.py

test: manifest
	$(BIN)/python -m pytest

# the kernel against exact DuckDB SQL and the floor, side by side (SCALE=S|M|L)
SCALE ?= M
bench: setup
	$(BIN)/infercost bench --scale $(SCALE)

# raw files to published marts for a generated fleet-day of DEVICES accelerators (data written once, ~20 min)
DEVICES ?= 1000
bench-fleet: manifest
	$(BIN)/infercost bench --fleet-day --devices $(DEVICES)

clean:
	rm -rf .infercost dbt/target dbt/logs .pytest_cache
