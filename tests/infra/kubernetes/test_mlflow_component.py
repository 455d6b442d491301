"""The MLflow component's server, run for real: the in-cluster names the pods use (http://mlflow:5000) pass
MLflow's Host-header check, a foreign Host does not, and /health (the probes) answers whatever the Host.

With the training image (CREDIT_SCORE_K8S_TRAIN_IMAGE, default localhost/credit-score-train:test) the rendered
pod itself runs under `podman kube play`: the image, command, arguments and security context of the manifest
(read-only root, uid 10001), with an emptyDir in place of the PersistentVolumeClaim and a 127.0.0.1 host port.
Without the image, the rendered `mlflow server` arguments run as a local process from this virtualenv (the
same mlflow release the image carries), with only the bind address, port and storage paths changed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.infra.kubernetes.conftest import one
from tests.infra.kubernetes.podman import image_exists, kube_play, logs
from tests.tools import free_port

TRAIN_IMAGE = os.environ.get("CREDIT_SCORE_K8S_TRAIN_IMAGE", "localhost/credit-score-train:test")

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def get(url: str, host: str) -> int:
    req = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 (127.0.0.1)
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def wait_healthy(base: str, port: int, timeout: float, what) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if get(base + "/health", f"127.0.0.1:{port}") == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"mlflow server did not start:\n{what()}")


def check_hosts(base: str) -> None:
    api = base + "/api/2.0/mlflow/experiments/search?max_results=1"
    for host in ("mlflow:5000", "mlflow", "mlflow.credit-score.svc:5000",
                 "mlflow.credit-score.svc.cluster.local:5000", "localhost:5000"):
        assert get(api, host) == 200, host
    assert get(api, "evil.example.com") == 403
    assert get(base + "/health", "10.1.2.3:5000") == 200  # kubelet probes use the pod IP


def test_mlflow_server_accepts_the_in_cluster_names(rendered, tmp_path):
    dep = one(rendered["dev"], "Deployment", "mlflow")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["mlflow", "server"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if image_exists(TRAIN_IMAGE):
        print(f"running the rendered MLflow pod with {TRAIN_IMAGE}")
        dep["metadata"]["name"] = f"cs-mlflow-{os.getpid()}"
        c["image"] = TRAIN_IMAGE
        c["ports"][0].update(hostIP="127.0.0.1", hostPort=port)
        for v in dep["spec"]["template"]["spec"]["volumes"]:
            if v.pop("persistentVolumeClaim", None) is not None:
                v["emptyDir"] = {"sizeLimit": "1Gi"}
        with kube_play([dep], tmp_path):
            wait_healthy(base, port, 180, lambda: logs(f"{dep['metadata']['name']}-pod-0-mlflow"))
            check_hosts(base)
        return

    print(f"{TRAIN_IMAGE} not found: running the rendered mlflow server arguments as a local process")
    local = {"--host": "127.0.0.1", "--port": str(port),
             "--backend-store-uri": f"sqlite:///{tmp_path}/mlflow.db", "--artifacts-destination": str(tmp_path / "a")}
    args = []
    for a in c["args"]:
        key = a.split("=", 1)[0]
        args.append(f"{key}={local[key]}" if key in local else a)
    assert sum(a.split("=", 1)[0] in local for a in args) == len(local)
    exe = Path(sys.executable).with_name("mlflow")
    log = tmp_path / "mlflow.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(exe), "server", *args], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "HOME": str(tmp_path)})
    try:
        wait_healthy(base, port, 120, lambda: log.read_text()[-3000:])
        check_hosts(base)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
