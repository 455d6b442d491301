# credit-score-app: the serving app (AppRole "credit-score-app" on VMs, Kubernetes role "credit-score-app" in
# pods). A retrain job that registers versions signs them, so it runs as "credit-score-train" (+ the signer policy).
# Least privilege: read the one KV v2 secret the service uses and the PUBLIC keys of the model-signing key
# (transit returns only the public halves of an ed25519 key there), nothing else. Token self-management
# (lookup-self, renew-self, revoke-self) comes from the built-in "default" policy.
# setup.sh rewrites the mount ("secret") and the path ("credit-score/app") when they are configured otherwise.

path "secret/data/credit-score/app" {
  capabilities = ["read"]
}

# serving verifies model signatures with the public keys; it must never be able to sign, export or change the
# key (the explicit deny keeps it so even if another policy attached to the same token grants more)
path "transit/keys/credit-score-models" {
  capabilities = ["read"]
}

path "transit/sign/credit-score-models" {
  capabilities = ["deny"]
}

path "transit/export/+/credit-score-models" {
  capabilities = ["deny"]
}

path "transit/export/+/credit-score-models/*" {
  capabilities = ["deny"]
}

path "transit/keys/credit-score-models/*" {
  capabilities = ["deny"]
}
