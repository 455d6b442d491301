"""Issue 15, acceptance 1: the tampered-copy attack against a real gunicorn service in production mode, a real
MLflow registry (local SQLite store) and real OpenBao transit signing (set up by vault/setup.sh).

The attacker can write the registry but holds no signing key: they copy the champion's artifacts, swap
``features.skops`` for a pipeline ending in ``builtins.exec`` (its payload writes a marker file), re-seal the
manifest, register the copy with a matching ``artifact_sha256`` (and the champion's own signature replayed) and
alias it ``champion``. The payload never runs, the version is refused and counted, the previous champion keeps
serving, a restarted service still refuses it; a correctly signed version promoted afterwards is served.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.config import DEFAULT_SIGNING_KEY, PROJECT_ROOT, Settings
from app.core.signature import SIGNATURE_TAG
from app.registry import CHAMPION, Registry
from app.signing import TransitSigner
from tests.attack import tampered_copy
from tests.helpers import fit_bundle
from tests.infra.vault import helpers as h
from tests.integration.test_serve_gunicorn import Server, http, server_env
from tests.tools import free_port
from tests.unit.test_api import ROW

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REFUSED = 'credit_score_model_reloads_total{alias="champion",outcome="refused"}'


class PatientServer(Server):
    """`credit-score serve` with 2 workers, given up to 3 minutes to answer /health (the shared CI machine)."""

    def __init__(self, env: dict[str, str], port: int, log: Path, timeout: float = 180.0):
        self.port, self.base, self.log = port, f"http://127.0.0.1:{port}", log
        exe = Path(sys.executable).with_name("credit-score")
        with open(log, "w") as out:
            self.proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--workers", "2"], env=env,
                                         stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        if not wait_for(lambda: _health(self.base), timeout):
            self.stop()
            raise AssertionError(f"server did not start:\n{log.read_text()[-3000:]}")


def _health(base: str) -> bool:
    try:
        return http("GET", base + "/health", timeout=1)[0] == 200
    except OSError:
        return False


class ReplaySigner:
    """What an attacker without the signing key can do: put a signature they have seen on their version."""

    def __init__(self, signature: str):
        self.signature = signature

    def sign(self, model_name: str, artifact_sha256: str) -> str:
        return self.signature


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    server = h.start_bao(tmp_path_factory.mktemp("bao-signing"))
    try:
        h.run_setup(server.addr, server.root_token, server.workdir / "setup.log")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def bundle(schema, small_frame):
    return fit_bundle(schema, small_frame, classifier="random_forest")


def register(reg: Registry, settings: Settings, bundle_dir: Path, sha: str) -> str:
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    with mlflow.start_run(experiment_id=reg.experiment_id()) as run:
        pass
    return reg.register(bundle_dir, run.info.run_id, {"artifact_sha256": sha, "classifier": "random_forest",
                                                      "sampler": "none", "gate_passed": "true"})


def metric(text: str, name: str) -> float:
    return sum(float(x.split()[-1]) for x in text.splitlines() if x.startswith(name))


def served_version(s: Server) -> str | None:
    status, body, _ = http("POST", s.base + "/predict", ROW)
    return json.loads(body)["model"]["version"] if status == 200 else None


def wait_for(cond, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.3)
    return cond()


def test_tampered_copy_is_refused_and_a_signed_version_is_then_served(bao, bundle, tmp_path):
    settings = Settings(models_dir=tmp_path / "models", reports_dir=tmp_path / "reports")
    train_vault = h.settings_for(bao, **dict(zip(("role_id", "secret_id"),
                                                 h.approle_credentials(bao, "credit-score-train"), strict=True)))
    signer = TransitSigner(train_vault, "transit", DEFAULT_SIGNING_KEY)
    trainer = Registry(settings, signer=signer)
    sha = bundle.save(tmp_path / "good")
    v1 = register(trainer, settings, tmp_path / "good", sha)
    trainer.promote(v1, CHAMPION)

    role_id, secret_id = h.approle_credentials(bao, "credit-score-app")
    env = server_env(tmp_path, CREDIT_SCORE_ENV="production", VAULT_ADDR=bao.addr, CREDIT_SCORE_VAULT_AUTH="approle",
                     CREDIT_SCORE_VAULT_ROLE_ID=role_id, CREDIT_SCORE_VAULT_SECRET_ID=secret_id,
                     CREDIT_SCORE_STORE_URL="none")
    env.pop("CREDIT_SCORE_ADMIN_TOKEN")  # production reads it from Vault
    port = free_port()
    s = PatientServer(env, port, tmp_path / "server.log")
    try:
        assert wait_for(lambda: served_version(s) == v1)

        # the attack: a re-sealed copy with an exec pipeline, the champion's signature replayed, aliased champion
        marker = tmp_path / "payload-ran"
        evil_sha = tampered_copy(trainer.bundle_path(v1), tmp_path / "evil", marker)
        attacker = Registry(settings, signer=ReplaySigner(trainer.get(v1).tags[SIGNATURE_TAG]))
        v2 = register(attacker, settings, tmp_path / "evil", evil_sha)
        assert attacker.get(v2).tags["artifact_sha256"] == evil_sha
        attacker.promote(v2, CHAMPION)

        assert wait_for(lambda: metric(http("GET", s.base + "/metrics")[1].decode(), REFUSED) >= 2)  # both workers
        for _ in range(20):
            assert served_version(s) == v1  # the previous champion keeps serving
        assert not marker.exists()
        refused = [json.loads(x) for x in s.log.read_text().splitlines()
                   if x.startswith("{") and '"refused model version"' in x]
        assert refused and {r["model.version"] for r in refused} == {v2}
        assert all("signature" in r["error.message"] and "does not match" in r["error.message"] for r in refused)

        # a restarted service still refuses it: no verified champion, so not ready, and the payload never runs
        s.stop()
        s = PatientServer(env, port, tmp_path / "server-restarted.log")
        assert wait_for(lambda: metric(http("GET", s.base + "/metrics")[1].decode(), REFUSED) >= 2)
        assert http("GET", s.base + "/ready")[0] == 503
        assert http("POST", s.base + "/predict", ROW)[0] == 503
        assert not marker.exists()

        # a correctly signed version, promoted, is served
        v3 = register(trainer, settings, tmp_path / "good", sha)
        assert trainer.get(v3).tags[SIGNATURE_TAG].startswith("vault:v")
        trainer.promote(v3, CHAMPION)
        assert wait_for(lambda: served_version(s) == v3)
        assert http("GET", s.base + "/ready")[0] == 200
        assert not marker.exists()
    finally:
        s.stop()
        signer.close()
