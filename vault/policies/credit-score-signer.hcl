# credit-score-signer: whatever registers model versions (the training/retrain job's own identity, AppRole and
# Kubernetes role "credit-score-train", and Jenkins' "credit-score-cicd" on main and release tags).
# It may sign with the model-signing key and read its public keys; it can neither export the private key,
# nor rotate, reconfigure or delete the key (operators do that: vault/README.md "Model signing").
# setup.sh rewrites the mount ("transit") and the key name ("credit-score-models") when configured otherwise.

path "transit/sign/credit-score-models" {
  capabilities = ["update"]
}

path "transit/keys/credit-score-models" {
  capabilities = ["read"]
}

# Registering is writing to MLflow too: the registry's writer user (EDIT on the experiment and the model;
# app/registry_access.py). The service's policy cannot read it (serving uses the read-only user).
path "secret/data/credit-score/mlflow-writer" {
  capabilities = ["read"]
}
