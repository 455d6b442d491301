"""vault/setup.sh against a real OpenBao dev server: idempotence, seeding, the policies' least privilege, and
non-default mounts and paths."""

from __future__ import annotations

import ipaddress

import hvac
import pytest

from app.secrets import build_provider
from tests.infra.vault import helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def login(server: h.BaoServer, role: str) -> hvac.Client:
    role_id, secret_id = h.approle_credentials(server, role)
    c = server.client("unused")
    c.auth.approle.login(role_id=role_id, secret_id=secret_id)
    h.remember(c.token)
    return c


def policy_token(server: h.BaoServer, policy: str) -> hvac.Client:
    token = server.client().auth.token.create(policies=[policy], ttl="10m")["auth"]["client_token"]
    return server.client(h.remember(token))


def denied(fn, *args, **kw) -> bool:
    try:
        fn(*args, **kw)
    except hvac.exceptions.Forbidden:
        return True
    return False


@pytest.fixture
def server(bao_factory):
    return bao_factory("setup")


def test_setup_is_idempotent_and_seeds_once(server):
    seeds = h.fresh_app_values()
    log = server.workdir / "setup.log"
    first = h.run_setup(server.addr, server.root_token, log, h.seed_env(seeds), cli=None)  # finds `bao` on PATH
    assert "using bao at" in first.stdout
    assert "approle auth at approle/: enabled" in first.stdout
    assert "secret secret/credit-score/app: created" in first.stdout
    root = server.client()
    role_id = root.auth.approle.read_role_id("credit-score-app")["data"]["role_id"]
    policies = {p: root.sys.read_policy(p)["data"]["rules"] for p in
                ("credit-score-app", "credit-score-cicd", "credit-score-provisioner", "credit-score-rotate")}
    roles = {r: root.read(f"auth/approle/role/{r}")["data"] for r in ("credit-score-app", "credit-score-cicd")}
    k8s_role = root.read("auth/kubernetes/role/credit-score-app")["data"]

    second = h.run_setup(server.addr, server.root_token, log, h.seed_env(h.fresh_app_values()))
    assert "approle auth at approle/: already enabled" in second.stdout
    assert "kubernetes auth at kubernetes/: already enabled" in second.stdout
    assert "secret secret/credit-score/app: exists, left unchanged" in second.stdout
    # nothing changed: same secret version and values, role ID, policies, roles
    meta = root.secrets.kv.v2.read_secret_metadata(path=h.APP_PATH, mount_point="secret")["data"]
    assert meta["current_version"] == 1
    data = root.secrets.kv.v2.read_secret_version(path=h.APP_PATH, mount_point="secret",
                                                  raise_on_deleted_version=True)["data"]["data"]
    assert data == seeds
    assert root.auth.approle.read_role_id("credit-score-app")["data"]["role_id"] == role_id
    assert {p: root.sys.read_policy(p)["data"]["rules"] for p in policies} == policies
    assert {r: root.read(f"auth/approle/role/{r}")["data"] for r in roles} == roles
    assert root.read("auth/kubernetes/role/credit-score-app")["data"] == k8s_role
    assert roles["credit-score-app"]["token_policies"] == ["credit-score-app"]
    # without a CA for the Kubernetes API outside a cluster: a warning, not a failure
    assert "kubernetes auth is enabled but not configured" in second.stderr
    assert not h.leaks(first.stdout + first.stderr + second.stdout + second.stderr)


def test_random_seeds_when_none_are_given(server):
    h.run_setup(server.addr, server.root_token, server.workdir / "setup.log")
    data = server.client().secrets.kv.v2.read_secret_version(path=h.APP_PATH, mount_point="secret",
                                                             raise_on_deleted_version=True)["data"]["data"]
    assert set(data) == set(h.NAMES)
    assert len(data["admin_token"]) == 48 and data["admin_token"] != data["feedback_token"]


def test_policies_are_least_privilege(server):
    seeds = h.fresh_app_values()
    h.run_setup(server.addr, server.root_token, server.workdir / "setup.log", h.seed_env(seeds))
    kv = "secret"
    deploy = "credit-score/deploy/registry"

    # the service: reads its own secret, nothing else, writes nothing
    app = login(server, "credit-score-app")
    assert app.secrets.kv.v2.read_secret_version(path=h.APP_PATH, mount_point=kv, raise_on_deleted_version=True)[
        "data"]["data"]["admin_token"] == seeds["admin_token"]
    assert denied(app.secrets.kv.v2.create_or_update_secret, path=h.APP_PATH, secret={"x": "y"}, mount_point=kv)
    assert denied(app.secrets.kv.v2.read_secret_version, path=deploy, mount_point=kv, raise_on_deleted_version=True)
    assert denied(app.secrets.kv.v2.read_secret_version, path="other/app", mount_point=kv,
                  raise_on_deleted_version=True)
    assert denied(app.sys.list_policies)
    assert denied(app.auth.approle.read_role_id, "credit-score-app")

    # CI/CD: writes and reads deployment secrets; cannot read or write the service's secrets
    ci = login(server, "credit-score-cicd")
    registry_password = h.fresh("registrypw")
    ci.secrets.kv.v2.create_or_update_secret(path=deploy, secret={"password": registry_password}, mount_point=kv)
    assert ci.secrets.kv.v2.read_secret_version(path=deploy, mount_point=kv, raise_on_deleted_version=True)[
        "data"]["data"]["password"] == registry_password
    assert denied(ci.secrets.kv.v2.read_secret_version, path=h.APP_PATH, mount_point=kv,
                  raise_on_deleted_version=True)
    assert denied(ci.secrets.kv.v2.create_or_update_secret, path=h.APP_PATH, secret={"admin_token": "x" * 8},
                  mount_point=kv)
    assert denied(ci.auth.approle.read_role_id, "credit-score-app")

    # Ansible: role ID and secret IDs of the service's AppRole, no secret values
    prov = policy_token(server, "credit-score-provisioner")
    assert prov.auth.approle.read_role_id("credit-score-app")["data"]["role_id"]
    h.remember(prov.auth.approle.generate_secret_id("credit-score-app")["data"]["secret_id"])
    assert denied(prov.auth.approle.generate_secret_id, "credit-score-cicd")
    assert denied(prov.secrets.kv.v2.read_secret_version, path=h.APP_PATH, mount_point=kv,
                  raise_on_deleted_version=True)

    # rotation: writes the service's secret, nothing of CI/CD's
    rot = policy_token(server, "credit-score-rotate")
    rot.secrets.kv.v2.patch(path=h.APP_PATH, secret={"admin_token": h.fresh("rotated")}, mount_point=kv)
    assert denied(rot.secrets.kv.v2.read_secret_version, path=deploy, mount_point=kv, raise_on_deleted_version=True)


def test_other_mount_and_path_upgrades_kv_v1(server, providers):
    root = server.client()
    root.sys.enable_secrets_engine("kv", path="kv-cs", options={"version": "1"})
    seeds = h.fresh_app_values()
    env = {**h.seed_env(seeds), "CREDIT_SCORE_VAULT_MOUNT": "kv-cs", "CREDIT_SCORE_VAULT_PATH": "team/cs/runtime",
           "CREDIT_SCORE_VAULT_DEPLOY_PATH": "team/cs/deploy"}
    out = h.run_setup(server.addr, server.root_token, server.workdir / "setup.log", env)
    assert "KV at kv-cs/: upgraded to version 2" in out.stdout
    assert 'path "kv-cs/data/team/cs/runtime"' in root.sys.read_policy("credit-score-app")["data"]["rules"]
    assert 'path "kv-cs/data/team/cs/deploy/*"' in root.sys.read_policy("credit-score-cicd")["data"]["rules"]
    role_id, secret_id = h.approle_credentials(server)
    p = build_provider(h.settings_for(server, role_id=role_id, secret_id=secret_id, mount="kv-cs",
                                      path="team/cs/runtime", env="production"))
    providers.append(p)
    p.check()
    assert p.get("admin_token") == seeds["admin_token"]


def test_setup_fails_clearly_without_a_usable_token(server):
    out = h.run_setup(server.addr, "not-a-token", server.workdir / "setup.log", check=False)
    assert out.returncode != 0 and "set VAULT_TOKEN" in out.stderr
    out = h.run_setup(server.addr, server.root_token, server.workdir / "setup.log",
                      {"CREDIT_SCORE_VAULT_PATH": "bad path"}, check=False)
    assert out.returncode != 0 and "APP_PATH=bad path" in out.stderr


def test_approle_secret_ids_are_short_lived_counted_and_bound_to_networks(server):
    """The defaults: secret IDs live a week, allow a bounded number of logins, and work (with their tokens) from
    this host only until the operator names the app hosts' and Jenkins' networks; each bound is enforced."""
    log = server.workdir / "setup.log"
    out = h.run_setup(server.addr, server.root_token, log)
    root = server.client()
    app = root.read("auth/approle/role/credit-score-app")["data"]
    cicd = root.read("auth/approle/role/credit-score-cicd")["data"]
    assert app["secret_id_ttl"] == 7 * 24 * 3600 and cicd["secret_id_ttl"] == 7 * 24 * 3600
    assert app["secret_id_num_uses"] == 100 and cicd["secret_id_num_uses"] == 1000
    for role in (app, cicd):  # (OpenBao shows a /32 token bound as the bare address)
        for key in ("secret_id_bound_cidrs", "token_bound_cidrs"):
            assert [str(ipaddress.ip_network(c)) for c in role[key]] == ["127.0.0.1/32"], (key, role[key])
    assert "secret IDs 168h, 100 logins, from 127.0.0.1/32" in out.stdout
    login(server, "credit-score-app")  # from 127.0.0.1: allowed

    # the use count is enforced: two logins, then the secret ID is spent
    h.run_setup(server.addr, server.root_token, log, {"CREDIT_SCORE_APP_SECRET_ID_NUM_USES": "2"})
    role_id, secret_id = h.approle_credentials(server)
    for _ in range(2):
        h.remember(server.client("unused").auth.approle.login(role_id=role_id, secret_id=secret_id)
                   ["auth"]["client_token"])
    with pytest.raises(hvac.exceptions.VaultError):
        server.client("unused").auth.approle.login(role_id=role_id, secret_id=secret_id)

    # the network binding is enforced: bound elsewhere, a login from here is refused
    h.run_setup(server.addr, server.root_token, log, {"CREDIT_SCORE_APP_BOUND_CIDRS": "10.255.255.0/24"})
    with pytest.raises(hvac.exceptions.VaultError):
        login(server, "credit-score-app")

    # "any" is a conscious choice (a warning); nonsense and unlimited uses are refused
    anyw = h.run_setup(server.addr, server.root_token, log, {"CREDIT_SCORE_CICD_BOUND_CIDRS": "any"})
    assert "CICD_BOUND_CIDRS=any" in anyw.stderr
    assert not root.read("auth/approle/role/credit-score-cicd")["data"].get("secret_id_bound_cidrs")
    for env in ({"CREDIT_SCORE_APP_SECRET_ID_NUM_USES": "0"}, {"CREDIT_SCORE_APP_BOUND_CIDRS": "everyone"}):
        bad = h.run_setup(server.addr, server.root_token, log, env, check=False)
        assert bad.returncode != 0 and "setup.sh: error:" in bad.stderr, bad.stderr
