"""app.secrets against a real OpenBao dev server set up by vault/setup.sh: token and AppRole auth, KV v2 reads,
the cache TTL and rotation, token renewal, re-authentication after revocation, and Vault outages in
development and production mode."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import hvac
import pytest

from app.config import PROJECT_ROOT
from app.secrets import SecretProvider, SecretsUnavailable, build_provider
from tests.infra.vault import helpers as h
from tests.tools import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def app_token(bao, ttl: str = "1h", **kw) -> str:
    """A token with the service's policy, as an operator would hand one out for `token` auth."""
    resp = bao.client().auth.token.create(policies=["credit-score-app"], ttl=ttl, **kw)
    return h.remember(resp["auth"]["client_token"])


def provider(providers, settings, clock=None) -> SecretProvider:
    p = build_provider(settings, clock=clock or time.monotonic)
    providers.append(p)
    return p


def short_role(bao, name: str, ttl: str, max_ttl: str) -> tuple[str, str]:
    """An AppRole with the service's policy and short token TTLs (the renewal tests cannot wait an hour)."""
    bao.client().write_data(f"auth/approle/role/{name}", data={
        "token_policies": "credit-score-app", "token_ttl": ttl, "token_max_ttl": max_ttl})
    return h.approle_credentials(bao, name)


# ---- authentication and reads -----------------------------------------------------------------------------
def test_token_auth_reads_kv_v2(bao, app_values, providers):
    p = provider(providers, h.settings_for(bao, auth="token", token=app_token(bao)))
    p.check()
    assert {n: p.get(n) for n in h.NAMES} == app_values
    assert p.healthy
    assert p.stats["logins"] == 1 and p.stats["reads"] == 1  # one read for all names: cached


def test_approle_login_reads_kv_v2(bao, app_values, providers):
    role_id, secret_id = h.approle_credentials(bao)
    p = provider(providers, h.settings_for(bao, role_id=role_id, secret_id=secret_id, env="production"))
    assert p.get("admin_token") == app_values["admin_token"]
    assert p.get("mlflow_password") == app_values["mlflow_password"]
    assert p.stats["logins"] == 1 and p.stats["reads"] == 1
    token = p.session.client.token
    info = bao.client().auth.token.lookup(token)["data"]
    assert set(info["policies"]) == {"credit-score-app", "default"} and info["meta"]["role_name"] == "credit-score-app"
    status = p.status()
    assert status["healthy"] and status["source"] == "vault"
    assert not h.leaks(repr(status)) and not h.leaks(repr(p)) and not h.leaks(repr(p.settings))


def test_secret_id_file_is_read_at_each_login(bao, app_values, providers, tmp_path):
    role_id, secret_id = h.approle_credentials(bao)
    sid_file = tmp_path / "secret-id"
    sid_file.write_text(secret_id + "\n")
    clock = h.FakeClock()
    p = provider(providers, h.settings_for(bao, role_id=role_id, secret_id_file=sid_file, ttl=0.1), clock)
    assert p.get("admin_token") == app_values["admin_token"]
    # Ansible rotates the secret ID: the file changes, the old ID is destroyed, the token gets revoked
    _, new_secret_id = h.approle_credentials(bao)
    sid_file.write_text(new_secret_id)
    c = bao.client()
    c.write_data("auth/approle/role/credit-score-app/secret-id/destroy", data={"secret_id": secret_id})
    c.auth.token.revoke(p.session.client.token)
    clock.advance(0.2)  # past the cache TTL: the next get reads, is refused, and logs in with the new ID
    assert p.get("admin_token") == app_values["admin_token"]
    assert p.stats["logins"] == 2


def test_missing_key_and_missing_secret(bao, providers, monkeypatch):
    values = h.fresh_app_values()
    del values["feedback_token"]
    h.put_app_values(bao, values)
    role_id, secret_id = h.approle_credentials(bao)
    monkeypatch.setenv("CREDIT_SCORE_FEEDBACK_TOKEN", h.fresh("envfeedback"))
    prod = provider(providers, h.settings_for(bao, role_id=role_id, secret_id=secret_id, env="production"))
    assert prod.get("feedback_token") is None  # production: no environment fallback
    assert prod.get("admin_token") == values["admin_token"]
    dev = provider(providers, h.settings_for(bao, role_id=role_id, secret_id=secret_id))
    assert dev.get("feedback_token") == os.environ["CREDIT_SCORE_FEEDBACK_TOKEN"]  # development: allowed
    assert dev.stats["fallbacks"] == 1


def test_policy_denies_other_paths_with_a_clear_error(bao, providers):
    role_id, secret_id = h.approle_credentials(bao)
    s = h.settings_for(bao, role_id=role_id, secret_id=secret_id, env="production", path="credit-score/deploy/x")
    p = provider(providers, s)
    with pytest.raises(SecretsUnavailable) as err:
        p.check()
    msg = str(err.value)
    assert "secret/credit-score/deploy/x" in msg and "policy" in msg and "permission denied" in msg
    assert p.stats["reauths"] == 1 and p.stats["logins"] == 2  # one fresh login and retry, then give up
    assert not p.healthy


# ---- rotation, renewal, revocation ---------------------------------------------------------------------------
def test_rotation_is_picked_up_after_the_ttl(bao, app_values, providers):
    role_id, secret_id = h.approle_credentials(bao)
    clock = h.FakeClock()
    p = provider(providers, h.settings_for(bao, role_id=role_id, secret_id=secret_id, ttl=1.0), clock)
    assert p.get("admin_token") == app_values["admin_token"]
    rotated = h.fresh("rotatedadmin")
    bao.client().secrets.kv.v2.patch(path=h.APP_PATH, secret={"admin_token": rotated}, mount_point="secret")
    assert p.get("admin_token") == app_values["admin_token"]  # still cached
    clock.advance(0.9)
    assert p.get("admin_token") == app_values["admin_token"]  # still within the TTL
    clock.advance(0.2)
    assert p.get("admin_token") == rotated
    assert p.stats["reads"] == 2
    assert p.get("feedback_token") == app_values["feedback_token"]  # a patch keeps the other keys
    assert p.redact(f"a {app_values['admin_token']} b {rotated}") == "a [REDACTED] b [REDACTED]"


def test_token_is_renewed_before_it_expires(bao, app_values, providers):
    role_id, secret_id = short_role(bao, "cs-renew", ttl="6s", max_ttl="60s")
    clock = h.FakeClock()
    p = provider(providers, h.settings_for(bao, role_id=role_id, secret_id=secret_id, ttl=0.2), clock)
    assert p.get("admin_token") == app_values["admin_token"]
    token = p.session.client.token
    assert not bao.client().auth.token.lookup(token)["data"].get("last_renewal_time")  # never renewed yet
    clock.advance(3.9)  # 2.1 s of the token's 6 s left: more than a third, no renewal yet (but a fresh read)
    assert p.get("admin_token") == app_values["admin_token"]
    assert p.stats["renewals"] == 0 and p.stats["reads"] == 2
    clock.advance(0.6)  # 1.5 s left: renewed (renew-self on the server, which resets the TTL to 6 s)
    assert p.get("admin_token") == app_values["admin_token"]
    assert p.stats["renewals"] == 1
    clock.advance(4.5)  # 1.5 s left of the renewed TTL: renewed again
    assert p.get("admin_token") == app_values["admin_token"]
    assert p.stats["renewals"] == 2
    assert p.session.client.token == token and p.stats["logins"] == 1
    info = bao.client().auth.token.lookup(token)["data"]
    assert info.get("last_renewal_time") and info["ttl"] > 2  # the server recorded the renewals


def test_token_at_its_max_ttl_is_replaced_by_a_new_login(bao, app_values, providers):
    role_id, secret_id = short_role(bao, "cs-maxttl", ttl="3s", max_ttl="3s")
    p = provider(providers, h.settings_for(bao, role_id=role_id, secret_id=secret_id, ttl=0.2))
    assert p.get("admin_token") == app_values["admin_token"]
    first = p.session.client.token
    # real time, not the fake clock: the max TTL that caps the renewal is the server's, and it runs on its clock
    time.sleep(2.3)  # < 1/3 of the TTL left and the max TTL leaves nothing to renew into
    assert p.get("admin_token") == app_values["admin_token"]
    assert p.session.client.token != first and p.stats["logins"] == 2


def test_revoked_token_leads_to_a_new_approle_login(bao, app_values, providers, caplog):
    role_id, secret_id = h.approle_credentials(bao)
    clock = h.FakeClock()
    p = provider(providers, h.settings_for(bao, role_id=role_id, secret_id=secret_id, ttl=0.2, env="production"),
                 clock)
    assert p.get("admin_token") == app_values["admin_token"]
    old = p.session.client.token
    bao.client().auth.token.revoke(old)
    clock.advance(0.3)
    with caplog.at_level(logging.INFO, logger="credit_score.secrets"):
        assert p.get("admin_token") == app_values["admin_token"]
    assert p.session.client.token != old and p.stats["reauths"] == 1 and p.stats["logins"] == 2 and p.healthy
    assert "logging in again" in caplog.text
    with pytest.raises(hvac.exceptions.Forbidden):
        bao.client(old).auth.token.lookup_self()


def test_revoked_static_token_fails_closed_in_production_and_falls_back_in_development(
        bao, app_values, providers, monkeypatch):
    env_admin = h.fresh("envadmin")
    monkeypatch.setenv("CREDIT_SCORE_ADMIN_TOKEN", env_admin)
    token = app_token(bao)
    clock = h.FakeClock()
    prod = provider(providers, h.settings_for(bao, auth="token", token=token, ttl=0.2, max_stale=0,
                                             env="production"), clock)
    dev = provider(providers, h.settings_for(bao, auth="token", token=token, ttl=0.2, max_stale=0), clock)
    assert prod.get("admin_token") == dev.get("admin_token") == app_values["admin_token"]
    bao.client().auth.token.revoke(token)
    clock.advance(0.3)
    assert prod.get("admin_token") is None  # fail closed: the admin endpoint answers 403
    assert not prod.healthy
    with pytest.raises(SecretsUnavailable, match="revoked or expired"):
        prod.check()
    assert dev.get("admin_token") == env_admin
    dev.check()  # development: a warning, no exception


def test_threads_share_one_provider(bao, app_values, providers):
    role_id, secret_id = h.approle_credentials(bao)
    p = provider(providers, h.settings_for(bao, role_id=role_id, secret_id=secret_id, ttl=0.05))
    rotated = h.fresh("threadadmin")
    allowed = {app_values["admin_token"], rotated}
    seen, errors = set(), []

    def worker():
        try:
            for _ in range(40):
                seen.add(p.get("admin_token"))
                time.sleep(0.005)
        except Exception as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    bao.client().secrets.kv.v2.patch(path=h.APP_PATH, secret={"admin_token": rotated}, mount_point="secret")
    for t in threads:
        t.join(timeout=60)
    assert not errors and seen <= allowed and rotated in seen
    assert p.stats["logins"] == 1


def test_close_revokes_the_login_token(bao, app_values):
    role_id, secret_id = h.approle_credentials(bao)
    p = build_provider(h.settings_for(bao, role_id=role_id, secret_id=secret_id))
    assert p.get("admin_token") == app_values["admin_token"]
    token = p.session.client.token
    p.close()
    p.close()  # idempotent
    with pytest.raises(hvac.exceptions.Forbidden):
        bao.client(token).auth.token.lookup_self()


# ---- Vault unreachable ----------------------------------------------------------------------------------------
def _check_cli(env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "CREDIT_SCORE_"))}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "app.secrets", "check"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_unreachable_at_start_production_fails_closed(providers):
    addr = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    secret_id = h.fresh("secretid")
    p = provider(providers, h.settings_for(addr, role_id="r", secret_id=secret_id, env="production"))
    with pytest.raises(SecretsUnavailable) as err:
        p.check()
    msg = str(err.value)
    assert "production mode requires Vault" in msg and addr in msg and "cannot connect" in msg
    assert secret_id not in msg
    assert p.get("admin_token") is None and not p.healthy
    # the shell view: what an entrypoint or an init container sees
    proc = _check_cli({"VAULT_ADDR": addr, "CREDIT_SCORE_ENV": "production", "CREDIT_SCORE_VAULT_AUTH": "approle",
                       "CREDIT_SCORE_VAULT_ROLE_ID": "r", "CREDIT_SCORE_VAULT_SECRET_ID": secret_id})
    assert proc.returncode == 1, proc.stderr
    assert "error: production mode requires Vault" in proc.stderr and "cannot connect" in proc.stderr
    assert not h.leaks(proc.stdout + proc.stderr)


def test_unreachable_at_start_development_falls_back_with_a_warning(providers, monkeypatch, caplog):
    addr = f"http://127.0.0.1:{free_port()}"
    env_admin = h.fresh("envadmin")
    monkeypatch.setenv("CREDIT_SCORE_ADMIN_TOKEN", env_admin)
    p = provider(providers, h.settings_for(addr, role_id="r", secret_id=h.fresh("secretid")))
    with caplog.at_level(logging.WARNING, logger="credit_score.secrets"):
        p.check()  # no exception in development
        assert p.get("admin_token") == env_admin
    assert not p.healthy
    assert "secrets fall back to environment variables" in caplog.text
    assert "CREDIT_SCORE_ADMIN_TOKEN" in caplog.text and env_admin not in caplog.text
    proc = _check_cli({"VAULT_ADDR": addr, "CREDIT_SCORE_VAULT_AUTH": "approle", "CREDIT_SCORE_VAULT_ROLE_ID": "r",
                       "CREDIT_SCORE_VAULT_SECRET_ID": "s" * 8, "CREDIT_SCORE_ADMIN_TOKEN": env_admin})
    assert proc.returncode == 0, proc.stderr
    assert '"admin_token": true' in proc.stdout and env_admin not in proc.stdout + proc.stderr


def test_explicit_fallback_in_production_is_allowed(providers, monkeypatch):
    addr = f"http://127.0.0.1:{free_port()}"
    env_admin = h.fresh("envadmin")
    monkeypatch.setenv("CREDIT_SCORE_ADMIN_TOKEN", env_admin)
    p = provider(providers, h.settings_for(addr, role_id="r", secret_id="s" * 8, env="production",
                                           env_fallback=True))
    p.check()
    assert p.get("admin_token") == env_admin


def test_outage_while_running_then_recovery(bao_factory, providers, monkeypatch):
    server = bao_factory("outage")
    first = h.fresh_app_values()
    h.run_setup(server.addr, server.root_token, server.workdir / "setup.log", h.seed_env(first))
    role_id, secret_id = h.fresh("roleid"), h.fresh("secretid")
    h.fixed_approle(server, role_id, secret_id)
    env_admin = h.fresh("envadmin")
    monkeypatch.setenv("CREDIT_SCORE_ADMIN_TOKEN", env_admin)
    ttl, max_stale = 0.5, 3.0
    clock = h.FakeClock()
    common = {"role_id": role_id, "secret_id": secret_id, "ttl": ttl, "timeout": 1.0}
    stale_ok = provider(providers, h.settings_for(server, env="production", max_stale=60, **common), clock)
    prod = provider(providers, h.settings_for(server, env="production", max_stale=max_stale, **common), clock)
    dev = provider(providers, h.settings_for(server, max_stale=max_stale, **common), clock)
    for p in (stale_ok, prod, dev):
        assert p.get("admin_token") == first["admin_token"] and p.healthy

    server.stop()
    clock.advance(ttl + 0.1)  # past the cache TTL: the next read goes to Vault, which is gone
    for p in (stale_ok, prod, dev):
        assert p.get("admin_token") == first["admin_token"]  # the last good values, within max_stale
        assert not p.healthy
    clock.advance(max_stale - 0.2)  # still within TTL + max_stale
    assert prod.get("admin_token") == first["admin_token"]
    clock.advance(0.4)  # past TTL + max_stale
    assert stale_ok.get("admin_token") == first["admin_token"]
    assert prod.get("admin_token") is None  # production: fail closed
    assert dev.get("admin_token") == env_admin  # development: the declared fallback
    with pytest.raises(SecretsUnavailable, match="cannot connect"):
        prod.check()

    # the server comes back (a new dev server: empty storage, set up again, same AppRole credentials)
    server.start()
    second = h.fresh_app_values()
    h.run_setup(server.addr, server.root_token, server.workdir / "setup.log", h.seed_env(second))
    h.fixed_approle(server, role_id, secret_id)
    for p in (stale_ok, prod, dev):  # within the back-off after a failure (min(5 s, TTL)): no new attempt
        assert not p.healthy
    assert prod.get("admin_token") is None
    clock.advance(ttl + 0.1)
    for p in (stale_ok, prod, dev):
        assert p.get("admin_token") == second["admin_token"]
        assert p.healthy
    assert prod.stats["reauths"] >= 1  # the old server's token died with it
    prod.check()
