"""Acceptance 3: the registry behind MLflow's basic-auth app, for real.

A real ``mlflow server --app-name basic-auth`` on 127.0.0.1 with the project's own auth config
(docker/compose/mlflow-basic-auth.ini: new users get no permission), a real OpenBao dev server holding the
MLflow credentials. The admin provisions a writer (EDIT) and a reader (READ) with :mod:`app.registry_access`.
Training reads the writer's credentials from Vault (``CREDIT_SCORE_VAULT_SECRETS`` points at its path) and
registers a version through the project's Registry; the service, whose Vault token may read only the app's
secret, reads the reader's, loads the champion and reports ready. The reader cannot register, tag or move an
alias (each a 403), and anonymous requests are refused (401).
"""

from __future__ import annotations

import configparser
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from app import create_app
from app.cli.common import use_registry_credentials
from app.config import DEFAULT_SIGNING_KEY, PROJECT_ROOT, Settings
from app.registry import Registry
from app.registry_access import Account, provision
from app.secrets import VaultSettings, build_provider
from app.signing import TransitSigner
from tests.helpers import fit_bundle, register_bundle
from tests.infra.vault import helpers as vault
from tests.tools import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AUTH_INI = PROJECT_ROOT / "docker" / "compose" / "mlflow-basic-auth.ini"
CREDENTIAL_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


@dataclass
class AuthServer:
    base: str
    admin: Account
    proc: subprocess.Popen
    log: Path


def _password() -> str:
    return secrets.token_urlsafe(18)


@pytest.fixture(scope="module")
def mlflow_auth(tmp_path_factory):
    try:
        import flask_wtf  # noqa: F401 (the auth app's CSRF protection: mlflow[auth] in requirements.txt)
    except ImportError:
        pytest.fail("Flask-WTF is missing (mlflow[auth], requirements.txt): run `make setup-dev`")
    root = tmp_path_factory.mktemp("mlflow-auth")
    ini = configparser.ConfigParser()
    ini.read(AUTH_INI)
    assert ini["mlflow"]["default_permission"] == "NO_PERMISSIONS" and "admin_password" not in ini["mlflow"]
    ini["mlflow"]["database_uri"] = f"sqlite:///{root}/basic_auth.db"  # the only change: a path in tmp
    with open(root / "basic_auth.ini", "w") as f:
        ini.write(f)
    port, admin = free_port(), Account("admin", _password())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CREDIT_SCORE_"))}
    env.update(HOME=str(root), MLFLOW_AUTH_CONFIG_PATH=str(root / "basic_auth.ini"),
               MLFLOW_AUTH_ADMIN_PASSWORD=admin.password, MLFLOW_FLASK_SERVER_SECRET_KEY=_password())
    log = root / "mlflow.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow")), "server", "--app-name", "basic-auth",
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--serve-artifacts",
             "--artifacts-destination", str(root / "artifacts")],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = AuthServer(f"http://127.0.0.1:{port}", admin, proc, log)
    try:
        deadline = time.monotonic() + 180  # a loaded 2-core machine: the server's start takes 20 to 60 s
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"mlflow server exited:\n{log.read_text()[-3000:]}"
            try:
                if requests.get(server.base + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"mlflow server did not start:\n{log.read_text()[-3000:]}")
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    server = vault.start_bao(tmp_path_factory.mktemp("bao"))
    yield server
    server.stop()


@pytest.fixture
def no_mlflow_credentials():
    """No MLflow credentials in the environment, before and after (the code under test writes them there)."""
    saved = {name: os.environ.pop(name) for name in CREDENTIAL_ENV if name in os.environ}
    yield
    for name in CREDENTIAL_ENV:
        os.environ.pop(name, None)
    os.environ.update(saved)


def drop_credentials() -> None:
    for name in CREDENTIAL_ENV:
        os.environ.pop(name, None)


def vault_env(bao, token: str, **extra: str) -> dict[str, str]:
    return {"VAULT_ADDR": bao.addr, "VAULT_TOKEN": token, "CREDIT_SCORE_VAULT_AUTH": "token", **extra}


def test_reader_loads_but_cannot_write_and_anonymous_is_refused(mlflow_auth, bao, no_mlflow_credentials, monkeypatch,
                                                               tmp_path, schema, small_frame):
    base, admin = mlflow_auth.base, mlflow_auth.admin
    writer, reader = Account("trainer", _password()), Account("scorer", _password())
    settings = Settings(models_dir=tmp_path / "models", reports_dir=tmp_path / "reports",
                        mlflow_tracking_uri=base)
    provision(base, admin, writer, reader, settings.experiment, settings.model_name)

    # Vault: the service's secret holds the reader; the writer lives on a path the service's token cannot read
    root = bao.client()
    root.secrets.kv.v2.create_or_update_secret(path="credit-score/app", mount_point="secret", secret={
        "admin_token": _password(), "feedback_token": _password(), "database_url": "none",
        "mlflow_username": reader.username, "mlflow_password": reader.password})
    root.secrets.kv.v2.create_or_update_secret(path="credit-score/mlflow-writer", mount_point="secret",
                                               secret={"username": writer.username, "password": writer.password})
    policy = (PROJECT_ROOT / "vault" / "policies" / "credit-score-app.hcl").read_text()
    root.sys.create_or_update_policy("credit-score-app", policy)
    app_token = root.auth.token.create(policies=["credit-score-app"], ttl="10m")["auth"]["client_token"]
    # the model signing key (vault/setup.sh does the same): training signs, the service verifies
    root.sys.enable_secrets_engine("transit")
    root.secrets.transit.create_key(name=DEFAULT_SIGNING_KEY, key_type="ed25519")
    signer = TransitSigner(vault.settings_for(bao, auth="token", token=bao.root_token), "transit",
                           DEFAULT_SIGNING_KEY)

    # training: the writer's credentials from Vault (as every `credit-score` command gets them), handed to
    # MLflow's client; registers and promotes
    writer_env = vault_env(bao, bao.root_token, CREDIT_SCORE_VAULT_SECRETS=(
        "mlflow_username=credit-score/mlflow-writer#username,mlflow_password=credit-score/mlflow-writer#password"))
    with pytest.MonkeyPatch.context() as training:
        for name, value in writer_env.items():
            training.setenv(name, value)
        use_registry_credentials()
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == writer.username
    version = register_bundle(settings, fit_bundle(schema, small_frame.head(600)), tmp_path,
                              registry=Registry(settings, signer))
    Registry(settings).promote(version, "champion")
    drop_credentials()

    # the service's token reads the reader only: the writer's path is denied by vault/policies
    serving_env = vault_env(bao, app_token)
    denied = build_provider(VaultSettings.from_env({**serving_env, "CREDIT_SCORE_VAULT_SECRETS":
                                                    "mlflow_password=credit-score/mlflow-writer#password"}))
    try:
        assert denied.get("mlflow_password") is None
    finally:
        denied.close()
    for name, value in serving_env.items():
        monkeypatch.setenv(name, value)
    app = create_app({"models_dir": tmp_path / "models", "reports_dir": tmp_path / "reports",
                      "mlflow_tracking_uri": base, "store_url": "none", "boot_wait": 0.0}, start_reload=False)
    r = app.test_client().get("/ready")
    assert r.status_code == 200 and r.json["model"]["version"] == version, r.json
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == reader.username  # handed over by the service itself

    # the reader, through the project's Registry: loads; cannot register, tag or move an alias
    from mlflow.exceptions import MlflowException

    reg = Registry(settings, signer)  # even with a valid signature at hand, MLflow refuses the reader's writes
    info, bundle = reg.load("champion")
    assert info.version == version and bundle.classifier_name == "xgboost"
    attempts = {
        "register": lambda: reg.register(reg.bundle_path(version), info.run_id,
                                         {"artifact_sha256": info.tags["artifact_sha256"]}),
        "tag": lambda: reg.client.set_model_version_tag(settings.model_name, version, "artifact_sha256", "0" * 64),
        "alias": lambda: reg.promote(version, "challenger"),
        "model tag": lambda: reg.client.set_registered_model_tag(settings.model_name, "champion_history", "[]"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(MlflowException) as e:
            attempt()
        assert e.value.error_code == "PERMISSION_DENIED", (what, e.value.error_code)
    assert Registry(settings).alias_version("challenger") is None and len(reg.versions()) == 1
    signer.close()

    # anonymous: every registry and artifact call refused
    drop_credentials()
    anonymous = Registry(settings)
    with pytest.raises(MlflowException) as e:
        anonymous.client.get_registered_model(settings.model_name)
    assert e.value.error_code == "UNAUTHENTICATED"
    for path in ("/api/2.0/mlflow/registered-models/search", "/api/2.0/mlflow-artifacts/artifacts"):
        assert requests.get(base + path, timeout=10).status_code == 401, path
    assert requests.get(base + "/api/2.0/mlflow/registered-models/search", timeout=10,
                        auth=(reader.username, "wrong")).status_code == 401
    assert reader.password not in mlflow_auth.log.read_text() and writer.password not in mlflow_auth.log.read_text()
