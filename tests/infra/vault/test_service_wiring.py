"""The service with Vault: production fails closed at start, readiness follows Vault, secrets are redacted."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import create_app
from app.config import Settings
from app.config.signing import DEFAULT_SIGNING_KEY
from app.registry import Registry
from app.signing import TransitSigner
from tests.helpers import fit_bundle, register_bundle
from tests.infra.vault import helpers as h
from tests.tools import free_port

pytestmark = [pytest.mark.integration]


def test_serve_fails_closed_in_production_when_vault_is_unreachable(tmp_path):
    token = h.fresh("token")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CREDIT_SCORE_ENV": "production",
           "CREDIT_SCORE_MODELS_DIR": str(tmp_path / "models"), "CREDIT_SCORE_PORT": str(free_port()),
           "VAULT_ADDR": f"http://127.0.0.1:{free_port()}", "CREDIT_SCORE_VAULT_AUTH": "token", "VAULT_TOKEN": token,
           "CREDIT_SCORE_VAULT_TIMEOUT": "1"}
    exe = Path(sys.executable).with_name("credit-score")
    proc = subprocess.run([str(exe), "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("credit-score: error: secrets unavailable")
    assert all(line.startswith("{") for line in proc.stdout.splitlines())  # warnings are JSON log lines
    assert token not in proc.stdout + proc.stderr


def test_ready_follows_vault_in_production_and_logs_are_redacted(tmp_path, bao_factory, monkeypatch, capsys,
                                                                 schema, small_frame):
    server = bao_factory("wiring")
    h.run_setup(server.addr, server.root_token, tmp_path / "setup.log")
    values = h.fresh_app_values()
    h.put_app_values(server, values)
    role_id, secret_id = h.approle_credentials(server)
    for var, value in {"CREDIT_SCORE_ENV": "production", "VAULT_ADDR": server.addr,
                       "CREDIT_SCORE_VAULT_AUTH": "approle", "CREDIT_SCORE_VAULT_ROLE_ID": role_id,
                       "CREDIT_SCORE_VAULT_SECRET_ID": secret_id, "CREDIT_SCORE_VAULT_TTL": "1",
                       "CREDIT_SCORE_VAULT_MAX_STALE": "1", "CREDIT_SCORE_VAULT_TIMEOUT": "1"}.items():
        monkeypatch.setenv(var, value)
    settings = Settings(models_dir=tmp_path / "models")
    # training's own identity signs (the service's may not: production serves signed versions only)
    train_role = h.approle_credentials(server, "credit-score-train")
    signer = TransitSigner(h.settings_for(server, role_id=train_role[0], secret_id=train_role[1]), "transit",
                           DEFAULT_SIGNING_KEY)
    v = register_bundle(settings, fit_bundle(schema, small_frame), tmp_path, registry=Registry(settings, signer))
    Registry(settings).promote(v, "champion")
    app = create_app({"models_dir": tmp_path / "models", "env": "production"}, start_reload=False)
    c = app.test_client()
    assert c.get("/ready").status_code == 200
    auth = {"Authorization": f"Bearer {values['admin_token']}"}
    assert c.get("/model/retrain/deadbeef", headers=auth).status_code == 404  # token accepted, no such job
    import logging

    logging.getLogger("credit_score.test").warning("leak attempt %s", values["admin_token"])
    server.stop()
    deadline = time.monotonic() + 20  # the service's own provider (real clock): TTL 1 s + max stale 1 s
    while time.monotonic() < deadline and c.get("/ready").status_code == 200:
        time.sleep(0.1)
    r = c.get("/ready")
    assert r.status_code == 503 and r.json["reason"] == "secrets unavailable"  # a reason class, no address
    assert server.addr not in r.get_data(as_text=True)
    out = capsys.readouterr().out
    assert values["admin_token"] not in out and secret_id not in out and role_id not in out
    assert any("leak attempt" in json.loads(x)["message"] for x in out.splitlines() if x.startswith("{"))
