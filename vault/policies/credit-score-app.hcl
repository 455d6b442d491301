# credit-score-app: the serving app and its retrain job (AppRole "credit-score-app" on VMs,
# Kubernetes role "credit-score-app" in pods).
# Least privilege: read the one KV v2 secret the service uses, nothing else. Token self-management
# (lookup-self, renew-self, revoke-self) comes from the built-in "default" policy.
# setup.sh rewrites the mount ("secret") and the path ("credit-score/app") when they are configured otherwise.

path "secret/data/credit-score/app" {
  capabilities = ["read"]
}
