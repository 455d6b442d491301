"""vault/config/server.hcl on a real OpenBao server: the production path from vault/README.md (start with the shipped
configuration, initialise, unseal, setup.sh, the service reads its secret over verified TLS). Only addresses,
paths and certificate files are swapped for temporary ones, by key, so a change in the files' shape fails here."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import hvac
import pytest

from app.config import PROJECT_ROOT
from app.secrets import SecretsUnavailable, build_provider
from tests.infra.vault import helpers as h
from tests.tools import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONFIG = PROJECT_ROOT / "vault" / "config"


def set_value(text: str, key: str, value: str) -> str:
    """Replace the (single) ``key = "..."`` assignment's value."""
    pattern = re.compile(rf'^(\s*{re.escape(key)}\s*=\s*)"[^"]*"', re.MULTILINE)
    new, n = pattern.subn(lambda m: f'{m.group(1)}"{value}"', text)
    assert n == 1, f"expected one '{key} = \"...\"' in the configuration, found {n}"
    return new


def local_config(name: str, workdir) -> tuple[str, int]:
    ca, cert, key = h.make_tls(workdir / "tls")
    port, cluster_port = free_port(), free_port()
    text = (CONFIG / name).read_text()
    text = set_value(text, "api_addr", f"https://127.0.0.1:{port}")
    text = set_value(text, "address", f"127.0.0.1:{port}")
    text = set_value(text, "tls_cert_file", str(cert))
    text = set_value(text, "tls_key_file", str(key))
    data = workdir / "data"
    data.mkdir(mode=0o700)
    text = set_value(text, "path", str(data))
    if "cluster_addr" in text:
        text = set_value(text, "cluster_addr", f"https://127.0.0.1:{cluster_port}")
        text = set_value(text, "cluster_address", f"127.0.0.1:{cluster_port}")
    (workdir / name).write_text(text)
    return str(workdir / name), port


def test_production_config_init_unseal_setup_and_tls_read(tmp_path, providers):
    config, port = local_config("server.hcl", tmp_path)
    addr, ca = f"https://127.0.0.1:{port}", str(tmp_path / "tls" / "ca.pem")
    log = tmp_path / "server.log"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([h.bao_binary(), "server", f"-config={config}"], stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True)
    try:
        h.wait_healthy(addr, 30, proc, log, verify=ca, expect=(501,))  # up, not initialised
        client = hvac.Client(url=addr, verify=ca, timeout=60)  # raft init fsyncs: slow on a loaded CI machine
        init = client.sys.initialize(secret_shares=1, secret_threshold=1)
        root_token = h.remember(init["root_token"])
        for k in init["keys"]:
            h.remember(k)
        client.sys.submit_unseal_keys(init["keys"])
        h.wait_healthy(addr, 60, proc, log, verify=ca, expect=(200,))  # unsealed and active (raft: leader)
        seeds = h.fresh_app_values()
        out = h.run_setup(addr, root_token, tmp_path / "setup.log", {**h.seed_env(seeds), "VAULT_CACERT": ca})
        assert "KV v2 at secret/: enabled" in out.stdout  # a real server has no KV mount until setup.sh
        client.token = root_token
        role_id = h.remember(client.auth.approle.read_role_id("credit-score-app")["data"]["role_id"])
        secret_id = h.remember(client.auth.approle.generate_secret_id("credit-score-app")["data"]["secret_id"])

        p = build_provider(h.settings_for(addr, role_id=role_id, secret_id=secret_id, cacert=ca, env="production"))
        providers.append(p)
        p.check()
        assert p.get("admin_token") == seeds["admin_token"]
        # the same server without its CA: TLS verification fails, production refuses to start
        unverified = build_provider(h.settings_for(addr, role_id=role_id, secret_id=secret_id, env="production"))
        providers.append(unverified)
        with pytest.raises(SecretsUnavailable, match="TLS verification failed"):
            unverified.check()
        # plain HTTP is not served
        plain = build_provider(h.settings_for(f"http://127.0.0.1:{port}", role_id=role_id, secret_id=secret_id,
                                              env="production"))
        providers.append(plain)
        with pytest.raises(SecretsUnavailable):
            plain.check()
        client.adapter.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
