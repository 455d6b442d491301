# credit-score-provisioner: Ansible, when it provisions a VM that runs the service.
# It fetches the AppRole's role ID and issues one secret ID per VM (use response wrapping:
# `vault write -wrap-ttl=10m -f auth/approle/role/credit-score-app/secret-id`), and destroys a VM's secret ID
# when the VM is decommissioned. It cannot read any secret itself nor change the role or its policies.

path "auth/approle/role/credit-score-app/role-id" {
  capabilities = ["read"]
}

path "auth/approle/role/credit-score-app/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/credit-score-app/secret-id-accessor/destroy" {
  capabilities = ["update"]
}
