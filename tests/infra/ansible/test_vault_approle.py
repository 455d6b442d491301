"""roles/vault (tasks approle) against a real OpenBao dev server set up by vault/setup.sh: deploy.yml --tags
approle reads the AppRole's role ID and issues one secret ID for the host with a provisioner token (policy
credit-score-provisioner, never the root token), writes it to a 0400 file, and a second run changes nothing.
The delivered credentials log in and read the service's secret; no credential appears in Ansible's output."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import time
import urllib.request

import pytest

from app.config import PROJECT_ROOT
from tests.infra.ansible.conftest import Ansible, tool
from tests.tools import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def bao(tmp_path):
    hvac = pytest.importorskip("hvac", reason="hvac (community.hashi_vault's client library) is not installed")
    exe = tool("bao")
    port, root = free_port(), secrets.token_hex(16)
    addr = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "bao.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([exe, "server", "-dev", f"-dev-root-token-id={root}",
                             f"-dev-listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{addr}/v1/sys/health", timeout=2):  # noqa: S310 (loopback)
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "bao.log").read_text()[-2000:]
                time.sleep(0.2)
        env = {**os.environ, "VAULT_ADDR": addr, "VAULT_TOKEN": root, "VAULT_CLI": exe}
        out = subprocess.run(["bash", str(PROJECT_ROOT / "vault" / "setup.sh")], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        client = hvac.Client(url=addr, token=root)
        provisioner = client.auth.token.create(policies=["credit-score-provisioner"], ttl="10m")["auth"]["client_token"]
        yield addr, client, provisioner
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def test_approle_credentials_are_delivered_once_and_work(tmp_path, bao):
    import hvac

    addr, root_client, provisioner = bao
    prefix = tmp_path / "prefix"
    ansible = Ansible(tmp_path)
    ansible.env["VAULT_TOKEN"] = provisioner
    extra = {"mlops_app_prefix": str(prefix), "mlops_app_vault_addr": addr,
             "mlops_app_user": "root" if os.getuid() == 0 else os.environ.get("USER", "nobody"),
             "mlops_app_group": "root" if os.getuid() == 0 else str(os.getgid())}

    first = ansible.run("deploy.yml", extra, extra_args=["--tags", "approle"])
    assert first.rc == 0, first.out[-4000:]
    assert first.recap()["changed"] >= 2
    secret_file = prefix / "etc" / "vault-secret-id"
    secret_id = secret_file.read_text().strip()
    assert secret_id and stat.S_IMODE(secret_file.stat().st_mode) == 0o400
    role_id = root_client.read("auth/approle/role/credit-score-app/role-id")["data"]["role_id"]

    # the delivered credentials log in and may read the service's secret (policy credit-score-app)
    app = hvac.Client(url=addr)
    app.auth.approle.login(role_id=role_id, secret_id=secret_id)
    value = app.secrets.kv.v2.read_secret_version(path="credit-score/app", mount_point="secret",
                                                  raise_on_deleted_version=True)
    assert value["data"]["data"]["admin_token"]
    # the secret ID records which host it belongs to
    meta = root_client.write("auth/approle/role/credit-score-app/secret-id/lookup", secret_id=secret_id)
    assert meta["data"]["metadata"] == {"host": "localhost"}

    again = ansible.run("deploy.yml", extra, extra_args=["--tags", "approle"])
    assert again.rc == 0 and again.recap()["changed"] == 0, (again.recap(), again.out[-4000:])
    assert secret_file.read_text().strip() == secret_id  # not re-issued
    for text in (first.out, again.out):
        assert secret_id not in text and role_id not in text and provisioner not in text
