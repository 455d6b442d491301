"""The rendered Deployment's pod, run for real with `podman kube play`: it starts with the manifest's security
context (uid 10001, read-only root filesystem, no capabilities, seccomp, no privilege escalation), its
ConfigMap and its emptyDir volumes, and answers /ready with a verified model loaded.

What the test changes in the rendered dev overlay, and why: the image (the local test image), a hostPort on
127.0.0.1 (podman publishes nothing else; nothing binds beyond loopback), and the model store: instead of an
MLflow server it mounts a small SQLite store made here, at the same path, and points MLFLOW_TRACKING_URI at it.
Everything else (command, probes, securityContext, volumes, environment) is the rendered manifest.

Needs podman (runc) and the serving image: CREDIT_SCORE_K8S_IMAGE, default localhost/credit-score:test
(built by the container image issue). Skipped with the reason when either is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from app.config import Settings
from app.registry import Registry
from tests.helpers import fit_bundle, register_bundle
from tests.infra.kubernetes.conftest import K8S, kustomize, one
from tests.infra.kubernetes.podman import image_exists, kube_play, logs, podman_cmd
from tests.stores import seed_mlflow_store
from tests.tools import free_port
from tests.unit.test_api import ROW

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IMAGE = os.environ.get("CREDIT_SCORE_K8S_IMAGE", "localhost/credit-score:test")


def podman() -> list[str]:
    cmd = podman_cmd()
    if cmd is None:
        pytest.skip("podman is not installed (Debian package podman)")
    if not image_exists(IMAGE):
        pytest.skip(f"image {IMAGE} not found: build it (docker/README.md) or set CREDIT_SCORE_K8S_IMAGE")
    return cmd


def http(method, url, body=None, timeout=5.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (127.0.0.1)
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def model_store(tmp_path, schema, small_frame):
    """A SQLite MLflow store with a champion, readable and writable by the pod's uid."""
    store = tmp_path / "store"
    seed_mlflow_store(store / "mlflow.db")
    settings = Settings(models_dir=store, reports_dir=tmp_path / "reports")
    version = register_bundle(settings, fit_bundle(schema, small_frame, threshold=0.3), tmp_path)
    Registry(settings).promote(version, "champion")
    for root, dirs, files in os.walk(store):
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o777 if name in dirs else 0o666)  # noqa: S103 (test store)
    store.chmod(0o777)  # noqa: S103
    return store, settings.tracking_uri


def test_rendered_pod_runs_and_answers_ready(tmp_path, model_store):
    cmd = podman()
    store, tracking_uri = model_store
    docs = kustomize(K8S / "overlays" / "dev")
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("credit-score-config"))
    dep = one(docs, "Deployment", "credit-score-blue")
    name = f"cs-kube-play-{os.getpid()}"
    port = free_port()
    dep["metadata"]["name"] = name
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    c["image"] = IMAGE
    c["ports"][0].update(hostIP="127.0.0.1", hostPort=port)
    cm["data"]["MLFLOW_TRACKING_URI"] = tracking_uri
    c["volumeMounts"].append({"name": "store", "mountPath": str(store)})
    spec["volumes"].append({"name": "store", "hostPath": {"path": str(store), "type": "Directory"}})
    container = f"{name}-pod-0-credit-score"
    with kube_play([cm, dep], tmp_path):
        base = f"http://127.0.0.1:{port}"
        deadline, status = time.time() + 180, None
        while time.time() < deadline:
            try:
                status, body = http("GET", base + "/ready")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.25)
        assert status == 200, f"/ready answered {status}\n{logs(container)}"
        assert json.loads(body)["ready"] is True
        assert http("GET", base + "/health")[0] == 200
        status, body = http("POST", base + "/predict", ROW)
        assert status == 200, body
        assert "prediction" in json.loads(body)

        # the security context took effect in the running container
        probe = ("import os, pathlib; s = pathlib.Path('/proc/1/status').read_text(); "
                 "f = dict(l.split(':', 1) for l in s.splitlines()); "
                 "w = lambda p: os.access(p, os.W_OK); "
                 "print(f['Uid'].split()[0], f['CapEff'].strip(), f['NoNewPrivs'].strip(), f['Seccomp'].strip(), "
                 "w('/tmp'), w('/var/lib/credit-score'))")
        out = subprocess.run([*cmd, "exec", container, "python", "-c", probe], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        uid, cap_eff, no_new_privs, seccomp, *writable = out.stdout.split()
        assert uid == "10001" and cap_eff == "0000000000000000" and no_new_privs == "1" and seccomp == "2"
        assert writable == ["True", "True"]
        ro = subprocess.run([*cmd, "exec", container, "touch", "/app/x"], capture_output=True, text=True, timeout=60)
        assert ro.returncode != 0 and "Read-only file system" in ro.stderr
