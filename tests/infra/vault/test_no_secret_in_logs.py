"""No secret value in any log or error message.

Every secret value the Vault tests create (seeds, rotated values, environment fallbacks, role and secret IDs,
tokens, Kubernetes JWTs) is registered in ``helpers.SECRET_VALUES``. This test runs last in the package
(conftest orders it): it drives the provider through rotation, revocation, a wrong secret ID and an outage with
every logger at DEBUG (hvac, urllib3 included) into its own file, runs ``python -m app.secrets check`` at DEBUG,
and then searches that file, the package-wide DEBUG log of all earlier Vault tests, every ``*.log`` under the
session's temporary directory (OpenBao server logs, setup.sh output) and all exception messages."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from app.config import PROJECT_ROOT
from app.secrets import SecretsUnavailable, build_provider
from tests.infra.vault import helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def cli_check(env_extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "CREDIT_SCORE_"))}
    env.update(env_extra, CREDIT_SCORE_LOG_LEVEL="DEBUG")
    proc = subprocess.run([sys.executable, "-m", "app.secrets", "check"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    return f"$ python -m app.secrets check (exit {proc.returncode})\n{proc.stdout}{proc.stderr}"


def test_leak_search_finds_a_planted_value():
    planted = h.fresh("planted")
    assert h.leaks(f"log line with {planted} inside") == [planted[:10] + "..."]


def test_no_secret_value_in_logs_or_errors(bao_factory, providers, monkeypatch, tmp_path, tmp_path_factory,
                                           vault_logs):
    log_file = tmp_path / "scenario-debug.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    vault_logs.boost()
    errors: list[str] = []
    outputs: list[str] = []
    try:
        server = bao_factory("leaks")
        seeds = h.fresh_app_values()
        h.run_setup(server.addr, server.root_token, server.workdir / "setup.log", h.seed_env(seeds))
        role_id, secret_id = h.fresh("roleid"), h.fresh("secretid")
        h.fixed_approle(server, role_id, secret_id)
        static = h.remember(server.client().auth.token.create(policies=["credit-score-app"], ttl="1h")["auth"][
            "client_token"])
        for name in h.NAMES:
            monkeypatch.setenv(f"CREDIT_SCORE_{name.upper()}", h.fresh(f"env{name.replace('_', '')}"))

        clock = h.FakeClock()
        prod = build_provider(h.settings_for(server, role_id=role_id, secret_id=secret_id, ttl=0.3, max_stale=0,
                                             env="production", timeout=1.0), clock=clock)
        dev = build_provider(h.settings_for(server, auth="token", token=static, ttl=0.3, max_stale=0,
                                            timeout=1.0), clock=clock)
        providers.extend([prod, dev])
        prod.check()
        dev.check()
        assert [prod.get(n) for n in h.NAMES] == [seeds[n] for n in h.NAMES]
        assert [dev.get(n) for n in h.NAMES] == [seeds[n] for n in h.NAMES]
        outputs.append(cli_check({"VAULT_ADDR": server.addr, "CREDIT_SCORE_ENV": "production",
                                  "CREDIT_SCORE_VAULT_AUTH": "approle", "CREDIT_SCORE_VAULT_ROLE_ID": role_id,
                                  "CREDIT_SCORE_VAULT_SECRET_ID": secret_id}))

        # rotation
        rotated = h.fresh_app_values()
        h.put_app_values(server, rotated)
        clock.advance(0.4)
        assert prod.get("admin_token") == rotated["admin_token"]
        assert dev.get("mlflow_password") == rotated["mlflow_password"]

        # revocation: AppRole logs in again; the static token cannot (development falls back to the environment)
        server.client().auth.token.revoke(prod.session.client.token)
        server.client().auth.token.revoke(static)
        clock.advance(0.4)
        assert prod.get("database_url") == rotated["database_url"]
        assert dev.get("admin_token") == os.environ["CREDIT_SCORE_ADMIN_TOKEN"]
        try:
            dev.check()  # development: warns, does not raise
        except SecretsUnavailable as e:  # pragma: no cover (would be a bug; keep the message for the search)
            errors.append(str(e))
            raise

        # a wrong secret ID
        wrong = build_provider(h.settings_for(server, role_id=role_id, secret_id=h.fresh("wrongsecretid"),
                                              env="production"))
        providers.append(wrong)
        with pytest.raises(SecretsUnavailable) as err:
            wrong.check()
        errors.append(str(err.value))
        errors.append(repr(err.value.__cause__))

        # outage
        server.stop()
        clock.advance(0.4)
        assert prod.get("admin_token") is None
        assert dev.get("feedback_token") == os.environ["CREDIT_SCORE_FEEDBACK_TOKEN"]
        with pytest.raises(SecretsUnavailable) as err:
            prod.check()
        errors.append(str(err.value))
        errors.append(repr(err.value.__cause__))
        errors.append(repr(prod.status()))
        outputs.append(cli_check({"VAULT_ADDR": server.addr, "CREDIT_SCORE_ENV": "production",
                                  "CREDIT_SCORE_VAULT_AUTH": "approle", "CREDIT_SCORE_VAULT_ROLE_ID": role_id,
                                  "CREDIT_SCORE_VAULT_SECRET_ID": secret_id}))
        for p in (prod, dev, wrong):
            p.close()
    finally:
        root.removeHandler(handler)
        handler.close()

    scenario = log_file.read_text(encoding="utf-8")
    # the capture really saw the interesting events, at DEBUG, from hvac's HTTP layer too
    for expected in ("AppRole login (approle) succeeded", "logging in again", "cannot connect",
                     "comes from the environment variable CREDIT_SCORE_ADMIN_TOKEN", '"POST /v1/auth/approle/login',
                     "GET /v1/secret/data/credit-score/app"):
        assert expected in scenario, f"{expected!r} missing from the DEBUG log"
    assert "production mode requires Vault" in outputs[-1] and "exit 1" in outputs[-1]
    assert '"admin_token": true' in outputs[0]

    assert not h.leaks(scenario), "secret values in the scenario's DEBUG log"
    assert not h.leaks("\n".join(errors)), "secret values in exception messages"
    assert not h.leaks("\n".join(outputs)), "secret values in `python -m app.secrets check` output"
    package_log = vault_logs.text()
    assert "Vault AppRole login" in package_log  # the earlier tests' records are there
    assert not h.leaks(package_log), "secret values in the DEBUG log of the Vault tests"
    files = sorted(tmp_path_factory.getbasetemp().rglob("*.log"))
    assert any(f.name == "bao-server.log" for f in files) and any(f.name == "setup.log" for f in files)
    found = {str(f): h.leaks(f.read_text(encoding="utf-8", errors="replace")) for f in files}
    assert not {f: v for f, v in found.items() if v}, "secret values in log files"
