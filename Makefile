# The two commands a newcomer runs: `make run` and `make test`. Every Jenkins stage calls a target here.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup run serve bootstrap train test test-fast test-vault vault-dev test-elk kibana-objects k8s-validate k8s-render lint bench bench-train bench-synthetic bench-serve clean

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
	$(BIN)/shellcheck vault/setup.sh elk/setup.sh

k8s-validate: setup ## Kubernetes: render every overlay, validate strictly for 1.30 and 1.35, checkov, blue-green tests
	$(BIN)/pytest -q tests/infra/kubernetes $(PYTEST_ARGS)

k8s-render: setup ## Print the rendered manifests of OVERLAY=dev|staging|prod
	$(BIN)/kubectl kustomize kubernetes/overlays/$(or $(OVERLAY),dev)

test-elk: setup ## ELK: log contract, real Filebeat, OpenSearch-API store, Logstash/Kibana/ILM checks
	$(BIN)/pytest tests/infra/elk $(PYTEST_ARGS)

kibana-objects: setup ## Regenerate elk/kibana/credit-score.ndjson from elk/kibana/saved_objects.py
	$(BIN)/python elk/kibana/saved_objects.py

test-vault: setup ## Vault tests: real OpenBao dev servers, setup.sh, secret provider, leak search
	$(BIN)/pytest tests/unit/test_secrets.py tests/infra/vault $(PYTEST_ARGS)

vault-dev: setup ## Local in-memory OpenBao on 127.0.0.1:8200 set up by vault/setup.sh (Ctrl-C stops it)
	@token=$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n'); addr=http://127.0.0.1:8200; \
	$(BIN)/bao server -dev -dev-no-store-token -dev-listen-address=127.0.0.1:8200 \
	  -dev-root-token-id=$$token >/tmp/credit-score-bao-dev.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq 100); do curl -sf $$addr/v1/sys/health >/dev/null && break; sleep 0.2; done; \
	PATH=$(CURDIR)/$(BIN):$$PATH VAULT_ADDR=$$addr VAULT_TOKEN=$$token vault/setup.sh; \
	echo "export VAULT_ADDR=$$addr VAULT_TOKEN=$$token CREDIT_SCORE_VAULT_AUTH=token  # dev only"; wait $$pid

bench: bench-synthetic bench-train bench-serve ## All benchmarks (by hand; prints ratios against in-run baselines)

bench-train: setup ## Training grid: ours vs a plain imblearn cross_validate loop, same grid, same run
	$(BIN)/python bench/train_bench.py

bench-serve: setup ## /predict throughput with wrk: ours vs `mlflow models serve`, same model, same run
	$(BIN)/python bench/serve_bench.py

bench-synthetic: setup ## 1M synthetic rows: generate + validate
	$(BIN)/python bench/synthetic_bench.py

clean: ## Remove the virtualenv and generated files (keeps models/)
	rm -rf $(VENV) reports .pytest_cache build *.egg-info
