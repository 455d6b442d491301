#!/usr/bin/env bash
# Validate docker/docker-compose.yml (`make lint-docker`):
#  1. a real Compose implementation renders it: `docker compose config` when the Compose plugin is there,
#     else `podman-compose config` (PyPI podman-compose); interpolation, anchors, depends_on conditions,
#     secrets and volumes must resolve. The required variables get throw-away placeholder values here, so the
#     check needs no docker/.env.
#  2. dclint checks it against the compose-spec JSON schema plus the rules kept in docker/.dclintrc.yaml
#     (installed once from npm into the git-ignored cache; DCLINT to use another binary).
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
compose_file="${1:-$repo/docker/docker-compose.yml}"
cache="${CREDIT_SCORE_CACHE_DIR:-$repo/.cache}"
dclint_version="${DCLINT_VERSION:-3.1.0}"

export OPENBAO_DEV_ROOT_TOKEN="${OPENBAO_DEV_ROOT_TOKEN:-lint-placeholder}"
export ELASTIC_PASSWORD="${ELASTIC_PASSWORD:-lint-placeholder}"
export KIBANA_SYSTEM_PASSWORD="${KIBANA_SYSTEM_PASSWORD:-lint-placeholder}"
for var in MLFLOW_ADMIN_PASSWORD MLFLOW_FLASK_SECRET_KEY MLFLOW_READER_PASSWORD MLFLOW_WRITER_PASSWORD POSTGRES_PASSWORD; do
  export "$var=${!var:-lint-placeholder}"
done

if docker compose version >/dev/null 2>&1; then
  docker compose -f "$compose_file" config --quiet
  echo "docker compose config: $compose_file is valid"
elif command -v podman-compose >/dev/null 2>&1; then
  podman-compose -f "$compose_file" config >/dev/null
  echo "podman-compose config: $compose_file is valid"
else
  echo "neither the docker compose plugin nor podman-compose is installed (pip install podman-compose)" >&2
  exit 1
fi

dclint="${DCLINT:-$cache/npm-dclint/node_modules/.bin/dclint}"
if [[ ! -x "$dclint" ]]; then
  mkdir -p "$cache/npm-dclint"
  npm install --silent --no-audit --no-fund --prefix "$cache/npm-dclint" "dclint@$dclint_version"
fi
"$dclint" -c "$repo/docker/.dclintrc.yaml" "$compose_file"
echo "dclint: $compose_file matches the compose schema and rules"
