# credit-score-rotate: the operators (or a rotation job) that set and rotate the service's runtime secrets.
# Writes new versions of credit-score/app and reads them back; the service picks a new version up within
# CREDIT_SCORE_VAULT_TTL seconds. Old versions stay readable for rollback; destroying them is an admin task.

path "secret/data/credit-score/app" {
  capabilities = ["create", "update", "patch", "read"]
}

path "secret/metadata/credit-score/app" {
  capabilities = ["read"]
}

# the MLflow registry writer's credentials (read by Jenkins' Train stage; the service never reads them)
path "secret/data/credit-score/mlflow-writer" {
  capabilities = ["create", "update", "patch", "read"]
}

path "secret/metadata/credit-score/mlflow-writer" {
  capabilities = ["read"]
}
