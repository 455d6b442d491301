#!/usr/bin/env bash
# Lint the Jenkinsfile without a Jenkins controller (`make lint-jenkins`):
#  1. compile it with Groovy (groovyc, all phases up to class generation, output thrown away): catches syntax
#     errors, unbalanced braces/quotes and malformed closures. It does NOT know the declarative schema (stage
#     and directive names are only method calls to Groovy); that needs a controller's
#     /pipeline-model-converter/validate (see jenkins/README.md).
#  2. npm-groovy-lint (CodeNarc, "recommended-jenkinsfile" rules, jenkins/.groovylintrc.json), failing on
#     errors (FAILON=error by default). --noserver: no CodeNarc server is left behind on 127.0.0.1:7484.
# npm-groovy-lint is installed once into the git-ignored cache (NPM_GROOVY_LINT to use another binary).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
jenkinsfile="${1:-$here/Jenkinsfile}"
cache="${CREDIT_SCORE_CACHE_DIR:-$repo/.cache}"
version="${NPM_GROOVY_LINT_VERSION:-16.2.0}"
failon="${FAILON:-error}"

if [[ -z "${JAVA_HOME:-}" ]]; then
  JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
  export JAVA_HOME
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$jenkinsfile" "$tmp/Jenkinsfile.groovy"
groovyc -d "$tmp/classes" "$tmp/Jenkinsfile.groovy"
echo "groovyc: $jenkinsfile compiles"

lint="${NPM_GROOVY_LINT:-$cache/npm-groovy-lint/node_modules/.bin/npm-groovy-lint}"
if [[ ! -x "$lint" ]]; then
  mkdir -p "$cache/npm-groovy-lint"
  npm install --silent --no-audit --no-fund --prefix "$cache/npm-groovy-lint" "npm-groovy-lint@$version"
fi
"$lint" --noserver --failon "$failon" --config "$here/.groovylintrc.json" "$jenkinsfile"
