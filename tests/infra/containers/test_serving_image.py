"""The serving image for real: built air-gapped with podman from the debootstrapped Debian base and the
wheelhouse, run on 127.0.0.1 with a read-only root filesystem as uid 10001, answering /health, /ready and a
valid /predict from a model it reads from the registry at start; plus what `podman inspect` must show, the
size limit, and what must not be in the image. A second test bakes a registered version into the image."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from app.config import Settings
from app.registry import Registry
from tests.helpers import fit_bundle, register_bundle
from tests.infra.containers.conftest import MAX_SERVE_IMAGE_MB, container_logs, give_to_app_user, smoke
from tests.stores import seed_mlflow_store
from tests.tools import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def model_store(tmp_path, schema, small_frame):
    """A local MLflow store (SQLite + artifacts) with a champion, owned by the container user."""
    store = tmp_path / "store"
    seed_mlflow_store(store / "mlflow.db")
    settings = Settings(models_dir=store, reports_dir=tmp_path / "reports")
    version = register_bundle(settings, fit_bundle(schema, small_frame, threshold=0.3), tmp_path)
    Registry(settings).promote(version, "champion")
    give_to_app_user(store)
    return store, version


@pytest.fixture
def container(podman):
    names = []

    def start(*args: str, name: str | None = None) -> str:
        name = name or f"cs-test-{uuid.uuid4().hex[:8]}"
        podman.run("run", "-d", "--name", name, *args, timeout=120)
        names.append(name)
        return name

    yield start
    for n in names:
        podman.run("rm", "-f", "-v", "-t", "5", n, check=False, timeout=120)  # -v: the anonymous volume too


def test_image_metadata(podman, serve_image):
    img = podman.inspect(serve_image)
    cfg = img["Config"]
    assert cfg["User"] == "10001:10001"
    hc = img.get("Healthcheck") or cfg.get("Healthcheck")  # podman: top level; docker: under Config
    assert hc and hc["Test"] == ["CMD", "python3", "/app/healthcheck.py"], img.get("Healthcheck")
    assert cfg["Entrypoint"] == ["credit-score"] and cfg["Cmd"] == ["serve"]
    assert "/var/lib/credit-score" in cfg["Volumes"]
    assert "8000/tcp" in cfg["ExposedPorts"]
    labels = cfg["Labels"]
    for key in ("source", "revision", "version", "title", "created"):
        assert f"org.opencontainers.image.{key}" in labels, labels
    assert labels["org.opencontainers.image.revision"] == "test"
    size_mb = img["Size"] / 1e6
    assert size_mb <= MAX_SERVE_IMAGE_MB, f"serving image is {size_mb:.0f} MB (limit {MAX_SERVE_IMAGE_MB} MB)"


def test_image_has_no_build_tools_caches_or_training_deps(podman, serve_image):
    script = (
        "for t in gcc cc g++ make; do command -v $t && echo FOUND:$t; done; "
        "ls -d /opt/venv/bin/pip* /root/.cache /wheelhouse /src 2>/dev/null | sed 's/^/FOUND:/'; "
        "python3 - <<'EOF'\n"
        "import importlib.util as u\n"
        "for m in ('matplotlib', 'imblearn', 'shap', 'pyarrow', 'setuptools', 'pip', 'numba'):\n"
        "    if u.find_spec(m): print('FOUND:' + m)\n"
        "for m in ('app', 'mlflow', 'sqlalchemy', 'alembic', 'xgboost', 'sklearn', 'skops', 'gunicorn', 'hvac'):\n"
        "    assert u.find_spec(m), m\n"
        "EOF"
    )
    proc = podman.run("run", "--rm", "--network=none", "--entrypoint", "sh", serve_image, "-c", script)
    found = [ln for ln in proc.stdout.splitlines() if ln.startswith("FOUND:")]
    assert not found, found


def test_serves_from_registry_read_only_as_non_root(podman, serve_image, serve_command_ready, model_store,
                                                    container):
    store, version = model_store
    port = free_port()
    name = container(
        "--read-only", "-p", f"127.0.0.1:{port}:8000",
        "-v", f"{store}:{store}",
        "-e", f"CREDIT_SCORE_MODELS_DIR={store}",
        "-e", "CREDIT_SCORE_ENV=development",  # no Vault in this test (the compose test has one)
        serve_image)
    result = smoke(f"http://127.0.0.1:{port}", timeout=180, expect_version=version)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{container_logs(podman, name)}"

    c = podman.inspect(name, kind="container")
    assert c["HostConfig"]["ReadonlyRootfs"] is True
    assert c["Config"]["User"] == "10001:10001"
    bindings = c["HostConfig"]["PortBindings"]["8000/tcp"]
    assert all(b["HostIp"] == "127.0.0.1" for b in bindings), bindings

    probe = podman.run("exec", name, "sh", "-c",
                       "id -u; id -g; tr '\\0' ' ' </proc/1/cmdline; echo; "
                       "touch /opt/venv/x 2>&1 || true; touch /tmp/ok && echo tmp-writable; "
                       "touch /var/lib/credit-score/ok && echo volume-writable")
    lines = probe.stdout.splitlines()
    assert lines[0] == "10001" and lines[1] == "10001", lines
    assert "gunicorn" in lines[2] and "app:create_app()" in lines[2], lines[2]  # PID 1 is gunicorn (exec)
    assert "Read-only file system" in probe.stdout
    assert "tmp-writable" in lines and "volume-writable" in lines

    hc = podman.run("healthcheck", "run", name, check=False, timeout=60)
    assert hc.returncode == 0, f"HEALTHCHECK failed: {hc.stdout} {hc.stderr}"

    logs = container_logs(podman, name)
    line = next(ln for ln in logs.splitlines() if ln.startswith("{") and '"message"' in ln)
    assert json.loads(line)["service.name"] == "credit-score"  # JSON log lines on stdout (ECS names)
    podman.record(serve_container_check="passed")


def test_stops_cleanly_on_sigterm(podman, serve_image, serve_command_ready, model_store, container):
    store, _ = model_store
    port = free_port()
    name = container("--read-only", "-p", f"127.0.0.1:{port}:8000", "-v", f"{store}:{store}",
                     "-e", f"CREDIT_SCORE_MODELS_DIR={store}", "-e", "CREDIT_SCORE_ENV=development", serve_image)
    result = smoke(f"http://127.0.0.1:{port}", timeout=180)
    assert result.returncode == 0, result.stderr
    podman.run("stop", "-t", "30", name, timeout=90)
    state = podman.inspect(name, kind="container")["State"]
    assert state["ExitCode"] == 0, f"exit code {state['ExitCode']} after SIGTERM\n{container_logs(podman, name)}"


def test_baked_model_serves_without_a_registry(podman, base_image, serve_image, serve_command_ready,
                                               model_store, container):
    """--build-arg MODEL_REF bakes a verified version into the image's own store: no volume, no registry."""
    store, version = model_store
    tag = "localhost/credit-score:test-baked"
    try:
        seconds = podman.build("docker/Dockerfile", tag, "MODEL_REF=champion",
                               f"MODEL_SOURCE_URI=sqlite:///{store}/mlflow.db", volumes=(f"{store}:{store}",))
        podman.record(baked_build_seconds=round(seconds, 1))
        assert podman.inspect(tag)["Config"]["Labels"]["io.credit-score.model-ref"] == "champion"
        port = free_port()
        name = container("--read-only", "-p", f"127.0.0.1:{port}:8000", "-e", "CREDIT_SCORE_ENV=development", tag)
        result = smoke(f"http://127.0.0.1:{port}", timeout=180, expect_version="1")
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{container_logs(podman, name)}"
        info = podman.run("exec", name, "credit-score", "registry", "show", "champion").stdout
        tags = json.loads(info)["tags"]
        assert tags["baked_from_version"] == version and tags["artifact_sha256"]
    finally:
        podman.run("rmi", "-f", tag, check=False, timeout=120)


def test_train_image_trains_into_the_volume_the_serving_image_reads(podman, train_image, serve_image,
                                                                    serve_command_ready, tmp_path, container):
    """The training job image (read-only, uid 10001) writes a store into the volume; the serving image, given
    the same volume, serves what it registered: both images agree on every path."""
    from app.datasets import write_synthetic

    data = tmp_path / "in"
    data.mkdir()
    write_synthetic(data / "train.csv", 2000, 3)
    (data / "train.yaml").write_text("cv_folds: 2\nclassifiers: [xgboost]\nsamplers: [none]\n"
                                     "xgboost: {n_estimators: 20}\n")
    os.chmod(data, 0o755)
    for f in data.iterdir():
        f.chmod(0o644)
    volume = tmp_path / "volume"
    volume.mkdir()
    give_to_app_user(volume)
    proc = podman.run("run", "--rm", "--read-only", "--network=none",
                      "-v", f"{volume}:/var/lib/credit-score", "-v", f"{data}:/data:ro",
                      "-e", "CREDIT_SCORE_N_JOBS=2", train_image,
                      "--config", "/data/train.yaml", "--data", "/data/train.csv", "--json", "--quiet",
                      check=False, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["gate"]["passed"] is True and result["version"] == "1"

    port = free_port()
    name = container("--read-only", "-p", f"127.0.0.1:{port}:8000", "-v", f"{volume}:/var/lib/credit-score",
                     "-e", "CREDIT_SCORE_ENV=development", serve_image)
    result = smoke(f"http://127.0.0.1:{port}", timeout=180, expect_version="1")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{container_logs(podman, name)}"
