# The two commands a newcomer runs: `make run` and `make test`. Every Jenkins stage calls a target here.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
OIP_VENV ?= .venv-oip
OIP_STAMP := $(OIP_VENV)/.installed
PYTEST_ARGS ?=
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup setup-dev oip-clients run serve bootstrap train simulate test test-fast test-vault vault-dev test-elk kibana-objects k8s-validate k8s-render lint monitor monitoring-check bench bench-train bench-synthetic bench-serve bench-store clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# Two stamps: serving and training need the runtime requirements only (`make run`); tests, linters and the
# infrastructure tools (ansible, checkov, podman-compose...) come with the dev extra (`make test`).
$(STAMP): requirements.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

setup: $(STAMP) ## Create .venv and install the package with its runtime requirements
setup-dev: $(DEV_STAMP) ## ...and the dev extra: test, lint and infrastructure tools

# Open Inference Protocol clients (tritonclient, KServe's InferenceRESTClient) and KServe's ModelServer in a
# virtualenv of their own: kserve pins pandas<3 and protobuf<7 (.venv has newer). Tests and the bench use it.
$(OIP_STAMP): requirements-oip.txt
	test -x $(OIP_VENV)/bin/python || $(PYTHON) -m venv $(OIP_VENV)
	$(OIP_VENV)/bin/python -m pip install -q --upgrade pip
	$(OIP_VENV)/bin/python -m pip install -q -r requirements-oip.txt
	touch $(OIP_STAMP)

oip-clients: $(OIP_STAMP) ## .venv-oip: tritonclient[http], kserve (InferenceRESTClient, ModelServer), xgboost

bootstrap: setup ## Make the default data if none is configured; train and register if no champion exists
	$(BIN)/credit-score bootstrap

run: bootstrap serve ## Set everything up, train if no model is registered, serve on 127.0.0.1:8000

serve: setup ## Serve the registered models (gunicorn) on CREDIT_SCORE_HOST:CREDIT_SCORE_PORT (127.0.0.1:8000)
	$(BIN)/credit-score serve

train: setup ## Train on the configured data (CREDIT_SCORE_DATA) or the embedded default
	$(BIN)/credit-score train

test: setup-dev oip-clients ## The whole test suite (unit, integration, real components) on TEST_WORKERS xdist workers
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=25 $(PYTEST_ARGS)

test-fast: setup-dev ## Unit tests, in-process, not marked slow (the inner loop: at most 60 s in all; a test hung for 120 s fails)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow" --timeout=120 tests/unit $(PYTEST_ARGS)

lint: setup-dev ## Static checks: ruff, the layer contract (.importlinter), shellcheck
	$(BIN)/ruff check app tests bench
	$(BIN)/lint-imports
	$(BIN)/shellcheck vault/setup.sh elk/setup.sh

k8s-validate: setup-dev ## Kubernetes: render every overlay, validate strictly for 1.30 and 1.35, checkov, blue-green tests
	$(BIN)/pytest -q tests/infra/kubernetes $(PYTEST_ARGS)

k8s-render: setup-dev ## Print the rendered manifests of OVERLAY=dev|staging|prod
	$(BIN)/kubectl kustomize kubernetes/overlays/$(or $(OVERLAY),dev)

test-elk: setup-dev ## ELK: log contract, real Filebeat, OpenSearch-API store, Logstash/Kibana/ILM checks
	$(BIN)/pytest tests/infra/elk $(PYTEST_ARGS)

kibana-objects: setup-dev ## Regenerate elk/kibana/credit-score.ndjson from elk/kibana/saved_objects.py
	$(BIN)/python elk/kibana/saved_objects.py

test-vault: setup-dev ## Vault tests: real OpenBao dev servers, setup.sh, secret provider, leak search
	$(BIN)/pytest tests/unit/test_secrets.py tests/infra/vault $(PYTEST_ARGS)

vault-dev: setup-dev ## Local in-memory OpenBao on 127.0.0.1:8200 set up by vault/setup.sh (Ctrl-C stops it)
	@token=$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n'); addr=http://127.0.0.1:8200; \
	$(BIN)/bao server -dev -dev-no-store-token -dev-listen-address=127.0.0.1:8200 \
	  -dev-root-token-id=$$token >/tmp/credit-score-bao-dev.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq 100); do curl -sf $$addr/v1/sys/health >/dev/null && break; sleep 0.2; done; \
	PATH=$(CURDIR)/$(BIN):$$PATH VAULT_ADDR=$$addr VAULT_TOKEN=$$token vault/setup.sh; \
	echo "export VAULT_ADDR=$$addr VAULT_TOKEN=$$token CREDIT_SCORE_VAULT_AUTH=token  # dev only"; wait $$pid

simulate: setup ## Watch the whole loop run (a few minutes): train, serve, drift, outcomes, monitor, retrain, A/B, promote, rollback; HTML report
	$(BIN)/credit-score simulate $(SIMULATE_ARGS)

monitor: setup ## One monitor run: drift, live performance, A/B, retrain policy, retention (reports/monitor/)
	$(BIN)/credit-score monitor

monitoring-check: setup-dev ## Prometheus: promtool check config/rules, rule unit tests, real Prometheus scraping the service
	$(BIN)/pytest tests/integration/test_monitoring_prometheus.py tests/unit/test_monitoring_assets.py $(PYTEST_ARGS)

bench: bench-synthetic bench-train bench-serve bench-store ## All benchmarks (by hand; prints ratios against in-run baselines)

bench-train: setup-dev ## Training grid: ours vs a plain imblearn cross_validate loop, same grid, same run
	$(BIN)/python bench/train_bench.py

bench-serve: setup-dev oip-clients ## /predict with wrk: the grid's champion and an XGBoost one beside a bare Flask floor and KServe, same run
	$(BIN)/python bench/serve_bench.py

bench-store: setup-dev ## /predict throughput with the prediction store on vs off (wrk), same run
	$(BIN)/python bench/store_bench.py

bench-synthetic: setup-dev ## 1M synthetic rows: generate + validate
	$(BIN)/python bench/synthetic_bench.py

clean: ## Remove the virtualenvs and generated files (keeps models/)
	rm -rf $(VENV) $(OIP_VENV) reports .pytest_cache build *.egg-info

# ---- delivery: images, linters, CI reports, deploys (each Jenkins stage calls one of these) -------------------
CONTAINER_ENGINE ?= podman
REGISTRY ?= registry.example.com
IMAGE_TAG ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)
IMAGE ?= $(REGISTRY)/credit-score
TRAIN_IMAGE ?= $(REGISTRY)/credit-score-train
BASE_IMAGE ?= python:3.11-slim
LOCAL_BASE_IMAGE ?= localhost/debian-python3:bookworm
AIRGAP ?= 0
PUBLISH ?= 0
DEPLOY_ENV ?= staging
DEPLOY_PATH ?= ansible
SMOKE_URL_staging ?= https://credit-score.staging.example.com
SMOKE_URL_production ?= https://credit-score.example.com
SMOKE_URL ?= $(SMOKE_URL_$(DEPLOY_ENV))
K8S_OVERLAY_staging := staging
K8S_OVERLAY_production := prod
VERSION := $(shell sed -n 's/^ *version="\([^"]*\)".*/\1/p' setup.py)
BUILD_FLAGS := $(if $(filter podman,$(notdir $(CONTAINER_ENGINE))),--format docker) \
	$(if $(filter 1,$(AIRGAP)),--network=none --build-arg PIP_NO_INDEX=1) \
	--build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg VERSION=$(VERSION) \
	--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
	--build-arg SOURCE=$$(git remote get-url origin 2>/dev/null || echo unknown) \
	--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ)
.PHONY: ci-info lint-docker lint-yaml lint-ansible lint-jenkins validate-data train-ci train-check quality-gate \
	base-image wheelhouse images image-scan push deploy-staging smoke rollback promote-production \
	wheel deploy

ci-info: ## Commit, image tag and tool versions (Jenkins "Checkout")
	@echo "commit $$(git rev-parse HEAD 2>/dev/null || echo none)  image tag $(IMAGE_TAG)  version $(VERSION)"
	@$(PYTHON) --version; $(CONTAINER_ENGINE) --version 2>/dev/null || echo "no $(CONTAINER_ENGINE)"

lint-docker: setup-dev ## hadolint on the Dockerfiles; compose file rendered and schema-checked
	$(BIN)/hadolint --config .hadolint.yaml docker/Dockerfile docker/Dockerfile.train
	PATH="$(abspath $(BIN)):$$PATH" docker/scripts/lint-compose.sh

lint-yaml: setup-dev ## yamllint on the infrastructure YAML (.yamllint.yaml; ansible/ has ansible-lint's YAML rules)
	$(BIN)/yamllint -s -c .yamllint.yaml $(wildcard docker jenkins monitoring elk kubernetes)

ANSIBLE_INVENTORY ?= local

lint-ansible: setup-dev ## Ansible: ansible-lint (production profile) and --syntax-check of every playbook
	cd ansible && $(abspath $(BIN))/ansible-lint
	cd ansible && for p in site.yml deploy.yml rollback.yml; do \
	  $(abspath $(BIN))/ansible-playbook --syntax-check -i inventories/$(ANSIBLE_INVENTORY) $$p || exit 1; done

wheel: setup ## Build the project's wheel into dist/ (what the Ansible deploy installs)
	$(BIN)/python -m pip wheel -q --no-deps -w dist .

deploy: setup-dev wheel bootstrap ## Blue-green deploy of VERSION with ANSIBLE_INVENTORY (local: nginx on 127.0.0.1:8080)
	cd ansible && $(abspath $(BIN))/ansible-playbook -i inventories/$(ANSIBLE_INVENTORY) deploy.yml \
	  -e mlops_app_version=$(VERSION)

lint-jenkins: ## Jenkinsfile: Groovy compile + npm-groovy-lint (CodeNarc) at error level
	jenkins/lint.sh

validate-data: setup ## Validate the training data against its schema (reports/data-validation.json)
	mkdir -p reports
	$(BIN)/credit-score data validate --json > reports/data-validation.json

# Release builds only (main, release tags): train-ci registers, and writes the version number it registered to
# reports/registered-version, which promote-production later promotes (and nothing else). Other branches and
# pull requests run train-check: the same training and gate, nothing written to the registry.
# The data: CREDIT_SCORE_DATA (a path or URL; Jenkins binds it from the training-data-source credential or the
# TRAIN_DATA parameter), or the embedded synthetic set only when TRAIN_SYNTHETIC=1 asks for it: neither is an
# error, never a silent fallback (jenkins/train_data.py). What it trained on goes to reports/train-data.json
# (source without credentials, file hash, the summary's data sources), archived with the build.
TRAIN_SYNTHETIC ?= 0
TRAIN_DATA_TOOL = $(BIN)/python $(dir $(abspath $(firstword $(MAKEFILE_LIST))))jenkins/train_data.py
train-ci: setup ## Train on CREDIT_SCORE_DATA (or TRAIN_SYNTHETIC=1), gate, register as challenger (reports/train*.json)
	mkdir -p reports
	rm -f reports/registered-version reports/train.json reports/train-data.json
	$(TRAIN_DATA_TOOL) check --synthetic $(TRAIN_SYNTHETIC)
	$(BIN)/credit-score train --json --quiet --promote challenger > reports/train.json || test $$? -eq 3
	$(TRAIN_DATA_TOOL) record --synthetic $(TRAIN_SYNTHETIC) reports/train.json > reports/train-data.json
	$(BIN)/python -c 'import json; v = json.load(open("reports/train.json"))["version"]; \
		assert v is None or str(v).isdigit(), v; print(v or "")' > reports/registered-version

train-check: setup ## Train and gate without registering (branches, pull requests): reports/train*.json, local bundle
	mkdir -p reports
	rm -f reports/train.json reports/train-data.json
	$(TRAIN_DATA_TOOL) check --synthetic $(TRAIN_SYNTHETIC)
	$(BIN)/credit-score train --json --quiet --no-register > reports/train.json || test $$? -eq 3
	$(TRAIN_DATA_TOOL) record --synthetic $(TRAIN_SYNTHETIC) reports/train.json > reports/train-data.json

quality-gate: setup ## Fail unless the model trained by train-ci passed the quality gate
	$(BIN)/python -c 'import json, sys; g = json.load(open("reports/train.json"))["gate"]; \
		print("quality gate", "passed" if g["passed"] else "FAILED:", "; ".join(g.get("reasons") or [])); \
		sys.exit(0 if g["passed"] else 1)'

base-image: ## Debian bookworm + Python 3.11 base image from debootstrap (no registry; cached in .cache/)
	docker/scripts/debian-base.sh $(LOCAL_BASE_IMAGE)

wheelhouse: ## Wheels for air-gapped image builds (docker/wheelhouse/)
	docker/scripts/wheelhouse.sh all

images: ## Build the serving and training images, tagged with the commit (AIRGAP=1: wheelhouse only)
	$(CONTAINER_ENGINE) build $(BUILD_FLAGS) -f docker/Dockerfile -t $(IMAGE):$(IMAGE_TAG) .
	$(CONTAINER_ENGINE) build $(BUILD_FLAGS) -f docker/Dockerfile.train -t $(TRAIN_IMAGE):$(IMAGE_TAG) .

image-scan: ## Vulnerability scan of both images (trivy; fails on fixable HIGH/CRITICAL)
	trivy image --exit-code 1 --severity HIGH,CRITICAL --ignore-unfixed $(IMAGE):$(IMAGE_TAG)
	trivy image --exit-code 1 --severity HIGH,CRITICAL --ignore-unfixed $(TRAIN_IMAGE):$(IMAGE_TAG)

push: ## Push both images when PUBLISH=1; otherwise a dry run that checks they exist
	@set -e; for ref in $(IMAGE):$(IMAGE_TAG) $(TRAIN_IMAGE):$(IMAGE_TAG); do \
	  $(CONTAINER_ENGINE) image inspect --format '{{.Id}}' $$ref >/dev/null; done; \
	if [ "$(PUBLISH)" = "1" ]; then \
	  printf '%s' "$$REGISTRY_PASSWORD" | $(CONTAINER_ENGINE) login --username "$$REGISTRY_USER" \
	    --password-stdin $(firstword $(subst /, ,$(REGISTRY))); \
	  $(CONTAINER_ENGINE) push $(IMAGE):$(IMAGE_TAG); $(CONTAINER_ENGINE) push $(TRAIN_IMAGE):$(IMAGE_TAG); \
	else echo "dry run (PUBLISH=1 pushes): $(IMAGE):$(IMAGE_TAG) $(TRAIN_IMAGE):$(IMAGE_TAG)"; fi

deploy-staging: setup-dev ## Blue-green deploy of IMAGE_TAG to staging (DEPLOY_PATH=ansible|kubernetes)
	$(MAKE) --no-print-directory _deploy DEPLOY_ENV=staging

# MODEL_VERSION: the version number this build's train-ci registered (Jenkins passes it on); empty when the build
# trained nothing. It becomes champion only while the challenger alias still points at it. Before it moves, the
# champion it replaces is recorded for this deploy (the release as each rollback path knows it: the Ansible
# version, the serving image), so that `make rollback` (Ansible or bluegreen.py) restores exactly that version.
MODEL_VERSION ?=
promote-production: setup-dev ## Production: blue-green deploy of IMAGE_TAG, then MODEL_VERSION challenger -> champion
	@case "$(MODEL_VERSION)" in ''|*[!0-9]*) [ -z "$(MODEL_VERSION)" ] || \
	  { echo "MODEL_VERSION must be a version number, not '$(MODEL_VERSION)'" >&2; exit 2; } ;; esac
	$(MAKE) --no-print-directory _deploy DEPLOY_ENV=production
	@if [ -n "$(MODEL_VERSION)" ]; then \
	  $(BIN)/credit-score registry promote $(MODEL_VERSION) --alias champion --expect-challenger $(MODEL_VERSION) \
	    --deploy-env production --release $(VERSION) --release $(IMAGE):$(IMAGE_TAG); \
	else echo "this build registered no model: the champion stays"; fi

# SMOKE_PUBLIC=1 (the default: staging and production URLs are the public entry): /metrics, /docs and
# /openapi.json must not answer there; SMOKE_PUBLIC=0 against a service's own port checks they do.
SMOKE_PUBLIC ?= 1
smoke: ## Smoke test of DEPLOY_ENV (or SMOKE_URL): health, ready, a prediction; internal paths not published
	$(PYTHON) docker/scripts/smoke.py --url $(SMOKE_URL) $(if $(filter 1,$(SMOKE_PUBLIC)),--public)

# ROLLBACK_MODEL=1 (production, the only environment whose deploys promote a model): the champion alias goes back
# first when the deploy being rolled back promoted one (promote-production recorded it), refused if it moved since.
# Ansible reads the environment from the inventory (credit_score_environment), bluegreen.py from --model-env.
ROLLBACK_MODEL ?= $(if $(filter production,$(DEPLOY_ENV)),1,0)
rollback: setup-dev ## Switch DEPLOY_ENV back to the previous colour (and the champion its deploy moved: ROLLBACK_MODEL)
	@case "$(ROLLBACK_MODEL)" in 0|1) ;; *) echo "ROLLBACK_MODEL must be 0 or 1" >&2; exit 2 ;; esac
	@case "$(DEPLOY_PATH)" in \
	  ansible) $(BIN)/ansible-playbook -i ansible/inventories/$(DEPLOY_ENV) ansible/rollback.yml \
	      -e mlops_app_rollback_model=$(ROLLBACK_MODEL) -e kubernetes_rollback_model=$(ROLLBACK_MODEL) ;; \
	  kubernetes) $(BIN)/python kubernetes/scripts/bluegreen.py rollback \
	      $(if $(filter 1,$(ROLLBACK_MODEL)),--model-env $(DEPLOY_ENV) --registry-cli $(abspath $(BIN))/credit-score) ;; \
	  *) echo "DEPLOY_PATH must be ansible or kubernetes" >&2; exit 2 ;; esac

_deploy:
	@case "$(DEPLOY_PATH)" in \
	  ansible) $(BIN)/ansible-playbook -i ansible/inventories/$(DEPLOY_ENV) ansible/deploy.yml \
	      -e mlops_app_version=$(VERSION) -e kubernetes_release_image=$(IMAGE):$(IMAGE_TAG) ;; \
	  kubernetes) $(BIN)/python kubernetes/scripts/bluegreen.py \
	      --release-file kubernetes/overlays/$(K8S_OVERLAY_$(DEPLOY_ENV))/release.yaml deploy $(IMAGE):$(IMAGE_TAG) ;; \
	  *) echo "DEPLOY_PATH must be ansible or kubernetes" >&2; exit 2 ;; esac
