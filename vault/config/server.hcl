# Production server configuration for Vault (>= 1.15) or OpenBao (>= 2.0): integrated (raft) storage, TLS.
# Start: `vault server -config=/etc/vault/server.hcl` (or `bao server ...`); then init and unseal once,
# see ../README.md. Replace the host names and paths marked below; everything else is a sane default.
# Test: tests/infra/vault/test_server_config.py starts a real OpenBao with this file (paths, addresses and
# certificates swapped for temporary ones), initialises, unseals, runs setup.sh and reads a secret over TLS.

ui            = true
cluster_name  = "credit-score"
log_level     = "info"
log_format    = "json" # one JSON object per line: shipped like the service's own logs

# The address clients use (must match a name in the TLS certificate) and the one peers use for raft.
api_addr      = "https://vault-1.credit-score.internal:8200"   # replace
cluster_addr  = "https://vault-1.credit-score.internal:8201"   # replace

# Vault: mlock keeps secrets out of swap, but raft's memory-mapped database does not mix with it; HashiCorp
# recommends disabling it with integrated storage and disabling swap on the host instead. OpenBao has no mlock
# and logs "unknown or unsupported field disable_mlock" for this line: harmless.
disable_mlock = true

storage "raft" {
  path    = "/var/lib/vault/raft"   # owned by the vault user, mode 0700, on a local disk
  node_id = "vault-1"               # unique per node

  # A 3- or 5-node cluster: every node lists the others; joining is automatic on start.
  # retry_join {
  #   leader_api_addr         = "https://vault-2.credit-score.internal:8200"
  #   leader_ca_cert_file     = "/etc/vault/tls/ca.crt"
  # }
}

listener "tcp" {
  address            = "0.0.0.0:8200"
  cluster_address    = "0.0.0.0:8201"

  # TLS is on (tls_disable defaults to false). The certificate must name api_addr's host (and 127.0.0.1 if
  # local tools talk to it); include the intermediate CA in the certificate file. Key: mode 0600, vault user.
  tls_cert_file      = "/etc/vault/tls/vault.crt"
  tls_key_file       = "/etc/vault/tls/vault.key"
  tls_min_version    = "tls12"

  # Mutual TLS for clients is optional (the service authenticates with AppRole or Kubernetes anyway):
  # tls_client_ca_file                 = "/etc/vault/tls/clients-ca.crt"
  # tls_require_and_verify_client_cert = true

  # Prometheus scrapes /v1/sys/metrics?format=prometheus with a token whose policy may read sys/metrics;
  # set this to true only on a listener that is reachable from the monitoring network alone.
  telemetry {
    unauthenticated_metrics_access = false
  }
}

telemetry {
  prometheus_retention_time = "60s"
  disable_hostname          = true
}
