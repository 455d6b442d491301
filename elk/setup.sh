#!/usr/bin/env bash
# Install the credit-score log objects into an Elastic stack (idempotent: run it again after any change):
#   1. the ILM policy      elasticsearch/ilm/<name>.json            -> PUT  _ilm/policy/<name>
#   2. the index template  elasticsearch/index_template/<name>.json -> PUT  _index_template/<name>
#   3. Kibana objects      kibana/credit-score.ndjson               -> POST api/saved_objects/_import?overwrite=true
# Order matters: the template names the policy, and the data stream is created from the template by the first
# event Logstash writes.
#
# Environment:
#   ELASTICSEARCH_URL   default http://localhost:9200
#   KIBANA_URL          default http://localhost:5601; set SKIP_KIBANA=1 to install only the Elasticsearch part
#   ELASTIC_USERNAME    default elastic (a user allowed to manage ILM, index templates and saved objects)
#   ELASTIC_PASSWORD    its password; unset = no authentication (a dev cluster without security)
#   SETUP_WAIT_SECONDS  how long to wait for each service to answer, default 120
# The password is given to curl on its standard input, never on its command line.
set -euo pipefail
cd "$(dirname "$0")"

ES="${ELASTICSEARCH_URL:-http://localhost:9200}"
KB="${KIBANA_URL:-http://localhost:5601}"
WAIT="${SETUP_WAIT_SECONDS:-120}"

call() {  # call METHOD URL [curl args...]: fails on an HTTP error and prints the answer
  local method="$1" url="$2"
  shift 2
  local auth=""
  if [[ -n "${ELASTIC_PASSWORD:-}" ]]; then
    auth="user = \"${ELASTIC_USERNAME:-elastic}:${ELASTIC_PASSWORD}\""
  fi
  printf '%s\n' "$auth" | curl --config - --silent --show-error --fail-with-body --max-time 30 \
    -X "$method" "$url" "$@"
  echo
}

wait_for() {  # wait_for NAME URL
  local deadline=$((SECONDS + WAIT))
  until call GET "$2" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "setup: $1 at $2 did not answer within ${WAIT}s" >&2
      return 1
    fi
    sleep 2
  done
}

wait_for Elasticsearch "$ES/_cluster/health"
for f in elasticsearch/ilm/*.json; do
  name="$(basename "$f" .json)"
  echo "setup: ILM policy $name"
  call PUT "$ES/_ilm/policy/$name" -H "Content-Type: application/json" --data-binary "@$f"
done
for f in elasticsearch/index_template/*.json; do
  name="$(basename "$f" .json)"
  echo "setup: index template $name"
  call PUT "$ES/_index_template/$name" -H "Content-Type: application/json" --data-binary "@$f"
done

if [[ "${SKIP_KIBANA:-0}" != "1" ]]; then
  wait_for Kibana "$KB/api/status"
  echo "setup: Kibana saved objects"
  answer="$(call POST "$KB/api/saved_objects/_import?overwrite=true" -H "kbn-xsrf: true" \
    --form "file=@kibana/credit-score.ndjson")"
  echo "$answer"
  # the import answers 200 even when objects fail: {"success": false, "errors": [...]}
  if ! grep -Eq '"success" *: *true' <<<"$answer"; then
    echo "setup: Kibana refused some saved objects (see the errors above)" >&2
    exit 1
  fi
fi
echo "setup: done"
