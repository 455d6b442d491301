# The two commands a newcomer runs: `make run` and `make test`. Every Jenkins stage calls a target here.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup run serve bootstrap train test test-fast lint bench bench-train bench-synthetic bench-serve clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt -e .
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install the package with its dev tools

bootstrap: setup ## Make the default data if none is configured; train and register if no champion exists
	$(BIN)/credit-score bootstrap

run: bootstrap serve ## Set everything up, train if no model is registered, serve on 127.0.0.1:8000

serve: setup ## Serve the registered models (gunicorn) on CREDIT_SCORE_HOST:CREDIT_SCORE_PORT (127.0.0.1:8000)
	$(BIN)/credit-score serve

train: setup ## Train on the configured data (CREDIT_SCORE_DATA) or the embedded default
	$(BIN)/credit-score train

test: setup ## The whole test suite (unit, integration, real components)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: setup ## Unit tests only (the inner loop, < 3 minutes)
	$(BIN)/pytest -m "not slow" tests/unit $(PYTEST_ARGS)

lint: setup ## Static checks
	$(BIN)/ruff check app tests bench

bench: bench-synthetic bench-train bench-serve ## All benchmarks (by hand; prints ratios against in-run baselines)

bench-train: setup ## Training grid: ours vs a plain imblearn cross_validate loop, same grid, same run
	$(BIN)/python bench/train_bench.py

bench-serve: setup ## /predict throughput with wrk: ours vs `mlflow models serve`, same model, same run
	$(BIN)/python bench/serve_bench.py

bench-synthetic: setup ## 1M synthetic rows: generate + validate
	$(BIN)/python bench/synthetic_bench.py

clean: ## Remove the virtualenv and generated files (keeps models/)
	rm -rf $(VENV) reports .pytest_cache build *.egg-info
