"""app.secrets without a Vault server: settings, the environment-only modes, redaction, no work at import.
(The behaviour against a real OpenBao server is in tests/infra/vault.)"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest

from app import secrets as s
from app.config import PROJECT_ROOT

SECRET = "unit-secret-value-7f3a9c"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    import os

    for var in list(os.environ):
        if var.startswith(("VAULT_", "BAO_", "CREDIT_SCORE_", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")):
            monkeypatch.delenv(var)


# ---- settings ------------------------------------------------------------------------------------------------
def test_defaults():
    v = s.VaultSettings.from_env({})
    assert (v.auth, v.mount, v.path, v.ttl, v.env, v.env_fallback) == ("none", "secret", "credit-score/app", 60.0,
                                                                        "development", True)
    assert v.k8s_token_path == s.DEFAULT_K8S_TOKEN_PATH
    assert s.VaultSettings.from_env({"CREDIT_SCORE_ENV": "production"}).env_fallback is False


def test_from_env_reads_every_variable(tmp_path):
    env = {"VAULT_ADDR": "https://vault:8200", "CREDIT_SCORE_VAULT_AUTH": "AppRole", "VAULT_TOKEN": SECRET,
           "CREDIT_SCORE_VAULT_ROLE_ID": "role", "CREDIT_SCORE_VAULT_SECRET_ID": SECRET,
           "CREDIT_SCORE_VAULT_SECRET_ID_FILE": str(tmp_path / "sid"), "CREDIT_SCORE_VAULT_K8S_ROLE": "r",
           "CREDIT_SCORE_VAULT_K8S_TOKEN_PATH": "/t", "CREDIT_SCORE_VAULT_MOUNT": "/kv/",
           "CREDIT_SCORE_VAULT_PATH": "a/b", "CREDIT_SCORE_VAULT_TTL": "5", "CREDIT_SCORE_ENV": "production",
           "CREDIT_SCORE_VAULT_ENV_FALLBACK": "yes", "VAULT_SKIP_VERIFY": "0", "VAULT_CACERT": "/ca.pem",
           "CREDIT_SCORE_VAULT_SECRETS": "mlflow_password=cs/mlflow#password, database_url=cs/db#url"}
    v = s.VaultSettings.from_env(env)
    assert v.auth == "approle" and v.addr == "https://vault:8200" and v.mount == "kv" and v.path == "a/b"
    assert v.token.get_secret_value() == SECRET and v.secret_id.get_secret_value() == SECRET
    assert v.ttl == 5.0 and v.env == "production" and v.env_fallback is True and v.skip_verify is False
    assert v.secrets == {"mlflow_password": "cs/mlflow#password", "database_url": "cs/db#url"}
    assert SECRET not in repr(v) and SECRET not in str(v.model_dump())
    p = s.build_provider(v)
    assert p._locate("mlflow_password") == ("cs/mlflow", "password") and p._locate("admin_token") == ("a/b",
                                                                                                       "admin_token")
    assert p._paths() == ["a/b", "cs/mlflow", "cs/db"]


@pytest.mark.parametrize("env, problem", [
    ({"CREDIT_SCORE_VAULT_AUTH": "ldap"}, "auth"),
    ({"CREDIT_SCORE_VAULT_AUTH": "approle", "CREDIT_SCORE_VAULT_SECRET_ID": SECRET}, "needs VAULT_ADDR"),
    ({"CREDIT_SCORE_VAULT_ENV_FALLBACK": "maybe"}, "CREDIT_SCORE_VAULT_ENV_FALLBACK must be true or false"),
    ({"CREDIT_SCORE_VAULT_TTL": "-1"}, "must not be negative"),
    ({"CREDIT_SCORE_VAULT_SECRETS": "admin_token"}, "expected name=path#key"),
    ({"CREDIT_SCORE_VAULT_SECRETS": "admin_token=cs/app"}, "expected 'path#key'"),
])
def test_invalid_settings_are_refused_without_echoing_secrets(env, problem):
    with pytest.raises(ValueError, match=problem) as err:
        s.VaultSettings.from_env(env)
    assert SECRET not in str(err.value)


# ---- no Vault configured --------------------------------------------------------------------------------------
def test_development_reads_the_environment(monkeypatch):
    monkeypatch.setenv("CREDIT_SCORE_ADMIN_TOKEN", SECRET)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "mlflow-pw-123")
    p = s.build_provider(s.VaultSettings())
    p.check()
    assert p.get("admin_token") == SECRET and p.get("mlflow_password") == "mlflow-pw-123"
    assert p.get("feedback_token") is None and p.healthy and p.status()["source"] == "environment"


def test_production_without_vault_fails_closed(monkeypatch):
    monkeypatch.setenv("CREDIT_SCORE_ADMIN_TOKEN", SECRET)
    p = s.build_provider(s.VaultSettings(env="production"))
    with pytest.raises(s.SecretsUnavailable, match="production mode reads secrets from Vault") as err:
        p.check()
    assert SECRET not in str(err.value)
    assert p.get("admin_token") is None and not p.healthy


def test_production_with_an_explicit_fallback(monkeypatch, caplog):
    monkeypatch.setenv("CREDIT_SCORE_ADMIN_TOKEN", SECRET)
    p = s.build_provider(s.VaultSettings(env="production", env_fallback=True))
    with caplog.at_level(logging.WARNING, logger="credit_score.secrets"):
        p.check()
    assert "Vault is not configured" in caplog.text
    assert p.get("admin_token") == SECRET and p.healthy


def test_development_without_fallback_returns_none(monkeypatch):
    monkeypatch.setenv("CREDIT_SCORE_ADMIN_TOKEN", SECRET)
    p = s.build_provider(s.VaultSettings(env_fallback=False))
    p.check()
    assert p.get("admin_token") is None


# ---- no work at import or construction ---------------------------------------------------------------------
def test_import_does_nothing():
    code = ("import sys, app.secrets; "
            "assert 'hvac' not in sys.modules and 'requests' not in sys.modules, 'imported at import time'")
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True, timeout=60)


def test_build_provider_does_not_touch_the_network(monkeypatch):
    import hvac

    def no_client(*a, **kw):
        raise AssertionError("a Vault client was created by build_provider")

    monkeypatch.setattr(hvac, "Client", no_client)
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")
    monkeypatch.setenv("CREDIT_SCORE_VAULT_AUTH", "approle")
    p = s.build_provider()
    assert p.vault_enabled and p.settings.auth == "approle"
    p.close()


# ---- redaction ------------------------------------------------------------------------------------------------
def test_redact_replaces_known_values(monkeypatch):
    monkeypatch.setenv("CREDIT_SCORE_ADMIN_TOKEN", SECRET)
    p = s.build_provider(s.VaultSettings())
    assert p.redact(f"token={SECRET}") == f"token={SECRET}"  # not seen yet
    p.get("admin_token")
    assert p.redact(f"token={SECRET}!") == "token=[REDACTED]!"
    assert s.redact(f"x {SECRET} y") == "x [REDACTED] y"  # module level: every live provider
    assert p.redact("abc") == "abc"


def test_settings_secrets_are_known_before_any_read():
    p = s.build_provider(s.VaultSettings(addr="http://127.0.0.1:9", auth="approle", role_id="role-abc",
                                         secret_id=SECRET))
    assert p.redact(SECRET) == s.REDACTED and SECRET not in repr(p)


def _emit(handler: logging.Handler, *args, exc: bool = False, **extra) -> None:
    logger = logging.getLogger("test.secrets.redaction")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        if exc:
            try:
                raise RuntimeError(f"boom with {SECRET}")
            except RuntimeError:
                logger.exception(*args, extra=extra)
        else:
            logger.info(*args, extra=extra)
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("json_format", [False, True])
def test_filter_redacts_messages_args_extras_and_tracebacks(monkeypatch, json_format):
    monkeypatch.setenv("CREDIT_SCORE_ADMIN_TOKEN", SECRET)
    p = s.build_provider(s.VaultSettings())
    p.get("admin_token")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    if json_format:
        from app.monitoring.logging import json_formatter

        handler.setFormatter(json_formatter())
    handler.addFilter(s.SecretRedactingFilter(p))
    _emit(handler, "header was %s", f"Bearer {SECRET}", **{"http.request.header": SECRET})
    _emit(handler, "failed for %r", SECRET, exc=True)
    if json_format:  # a record written as several lines (a batch's predictions): their fields too
        from app.monitoring.logging import LINES

        _emit(handler, "prediction", **{LINES: [{"trace.id": SECRET, "n": 1}, {"trace.id": "ok", "n": 2}]})
    text = out.getvalue()
    assert SECRET not in text
    assert text.count(s.REDACTED) >= 3 and "RuntimeError: boom with [REDACTED]" in text
    if json_format:
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert lines[0]["message"] == "header was Bearer [REDACTED]"
        assert lines[0]["http.request.header"] == s.REDACTED
        assert [(x["trace.id"], x["n"]) for x in lines[-2:]] == [(s.REDACTED, 1), ("ok", 2)]


# ---- the command -----------------------------------------------------------------------------------------------
def test_cli_exit_codes(monkeypatch, capsys):
    monkeypatch.setenv("CREDIT_SCORE_VAULT_AUTH", "bogus")
    assert s.main(["check"]) == 2
    assert "invalid Vault settings" in capsys.readouterr().err
    assert s.main(["nonsense"]) == 2
    monkeypatch.setenv("CREDIT_SCORE_VAULT_AUTH", "none")
    monkeypatch.setenv("CREDIT_SCORE_ENV", "production")
    assert s.main(["check"]) == 1
    assert "production mode reads secrets from Vault" in capsys.readouterr().err
    monkeypatch.setenv("CREDIT_SCORE_ENV", "development")
    monkeypatch.setenv("CREDIT_SCORE_ADMIN_TOKEN", SECRET)
    assert s.main(["check"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["present"]["admin_token"] is True and SECRET not in out.out + out.err


# ---- cache, staleness and back-off, driven by an injected clock (no Vault, no waiting) -------------------------
def test_cache_staleness_and_back_off_follow_the_injected_clock(monkeypatch):
    now = [0.0]
    p = s.build_provider(s.VaultSettings(addr="http://127.0.0.1:9", auth="approle", role_id="role-abc", ttl=10,
                                         max_stale=20, env="production"), clock=lambda: now[0])
    answers: list = [{"admin_token": "first-value"}]
    reads: list[float] = []

    def read(path):
        reads.append(now[0])
        answer = answers.pop(0) if answers else s.SecretsUnavailable("reading secret/x at addr failed: down")
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(p.session, "read", read)
    assert p.get("admin_token") == "first-value" and p.healthy
    now[0] = 9.9
    assert p.get("admin_token") == "first-value" and reads == [0.0]  # within the TTL: cached
    now[0] = 10.0
    assert p.get("admin_token") == "first-value" and reads == [0.0, 10.0]  # refresh failed: stale value
    assert not p.healthy and p.status()["last_error"].endswith("down")
    now[0] = 14.9
    assert p.get("admin_token") == "first-value" and len(reads) == 2  # back-off: min(5 s, TTL)
    now[0] = 15.0
    assert p.get("admin_token") == "first-value" and len(reads) == 3
    now[0] = 29.9
    assert p.get("admin_token") == "first-value"  # TTL + max_stale not yet over
    now[0] = 30.0
    assert p.get("admin_token") is None  # too old: production fails closed
    answers.append({"admin_token": "second-value"})
    now[0] = 35.0
    assert p.get("admin_token") == "second-value" and p.healthy
    assert p.stats["failures"] == len(reads) - 2
