# credit-score-cicd: Jenkins (AppRole "credit-score-cicd").
# CI/CD writes deployment secrets only (image registry credentials, kubeconfig, signing keys, ...) under
# credit-score/deploy/, and may read them back. It can neither read nor change the service's runtime secrets:
# the explicit deny keeps it so even if another policy attached to the same token grants more.

path "secret/data/credit-score/deploy/*" {
  capabilities = ["create", "update", "patch", "read"]
}

path "secret/metadata/credit-score/deploy/*" {
  capabilities = ["read", "list"]
}

path "secret/metadata/credit-score/deploy" {
  capabilities = ["list"]
}

path "secret/data/credit-score/app" {
  capabilities = ["deny"]
}

path "secret/metadata/credit-score/app" {
  capabilities = ["deny"]
}

# The MLflow registry's writer (EDIT on the experiment and the model: app/registry_access.py), for the Train
# stage: `CREDIT_SCORE_VAULT_SECRETS=mlflow_username=credit-score/mlflow-writer#username,mlflow_password=...`.
# Read only; the service's own MLflow user (the read-only reader) stays in credit-score/app, denied above.
path "secret/data/credit-score/mlflow-writer" {
  capabilities = ["read"]
}
