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
