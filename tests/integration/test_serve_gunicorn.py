"""The real service: `credit-score serve` (gunicorn, 2 workers) on 127.0.0.1 against a real MLflow store.

Covers the endpoints over HTTP, metrics aggregated across workers, hot reload under load with zero failed
requests, refusal of a tampered version while the old one keeps serving, a real retrain job (202, 409 while it
runs, completion with the gate result; a job still running when the server stops is stopped with it), and
graceful shutdown on SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from app.config import PROJECT_ROOT, Settings
from app.datasets import generate_synthetic
from app.registry import Registry
from tests.helpers import fit_bundle, register_bundle
from tests.tools import free_port
from tests.unit.test_api import ROW, TOKEN
from tests.unit.test_jobs import process_group_alive, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def http(method: str, url: str, body=None, headers=None, timeout=10.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json",
                                                                          **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (loopback test server)
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


class Server:
    def __init__(self, env: dict[str, str], port: int, log: Path):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        exe = Path(sys.executable).with_name("credit-score")
        self.proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--workers", "2"], env=env,
                                     stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)  # noqa: SIM115
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if http("GET", self.base + "/health", timeout=1)[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"server did not start:\n{log.read_text()[-3000:]}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def store(tmp_path, schema, small_frame):
    settings = Settings(models_dir=tmp_path / "models", reports_dir=tmp_path / "reports")
    v1 = register_bundle(settings, fit_bundle(schema, small_frame, threshold=0.3), tmp_path)
    Registry(settings).promote(v1, "champion")
    return tmp_path, settings


def server_env(tmp: Path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_SCORE_", "MLFLOW_"))}
    env.update(CREDIT_SCORE_MODELS_DIR=str(tmp / "models"), CREDIT_SCORE_REPORTS_DIR=str(tmp / "reports"),
               CREDIT_SCORE_RELOAD_INTERVAL="1", CREDIT_SCORE_ADMIN_TOKEN=TOKEN,
               PROMETHEUS_MULTIPROC_DIR=str(tmp / "prom"))
    env.update(extra)
    return env


@pytest.fixture
def server(store):
    tmp, settings = store
    s = Server(server_env(tmp), free_port(), tmp / "server.log")
    yield s, settings, tmp
    s.stop()


def test_endpoints_over_http_and_metrics_across_workers(server):
    s, _, tmp = server
    assert http("GET", s.base + "/ready")[0] == 200
    n = 30
    for i in range(n):
        status, body, headers = http("POST", s.base + "/predict", ROW, {"X-Request-ID": f"r{i}"})
        assert status == 200 and json.loads(body)["request_id"] == f"r{i}" and headers["X-Request-ID"] == f"r{i}"
    status, body, _ = http("POST", s.base + "/predict", dict(ROW, age="x"))
    assert status == 422 and json.loads(body)["details"][0]["field"] == "age"
    assert http("GET", s.base + "/nope")[0] == 404
    assert http("POST", s.base + "/predict/batch", {"instances": [ROW] * 5})[0] == 200
    assert http("GET", s.base + "/model/info")[0] == 200
    assert http("GET", s.base + "/openapi.json")[0] == 200 and http("GET", s.base + "/docs")[0] == 200
    assert http("GET", s.base + "/v2/models/credit-score")[0] == 200
    status, text, _ = http("GET", s.base + "/metrics")
    text = text.decode()
    line = next(x for x in text.splitlines()
                if x.startswith('credit_score_http_requests_total{endpoint="/predict",method="POST",status="200"}'))
    assert float(line.split()[-1]) == n  # summed over both workers
    pids = {x.split('pid="')[1].split('"')[0] for x in text.splitlines() if x.startswith("credit_score_model_loaded{")}
    assert len(pids) == 2
    # gunicorn's own logs and ours are JSON lines
    lines = [x for x in s.log.read_text().splitlines() if x.strip()]
    assert all(x.startswith("{") for x in lines[1:]), [x for x in lines if not x.startswith("{")][:3]
    assert any(json.loads(x).get("log.logger") == "gunicorn.error" for x in lines[1:])


def _load(base: str, stop: threading.Event, results: list, max_requests: int = 5000):
    while not stop.is_set() and len(results) < max_requests:
        try:
            status, body, _ = http("POST", base + "/predict", ROW, timeout=5)
            results.append((status, json.loads(body)["model"]["version"] if status == 200 else None))
        except OSError as e:
            results.append((str(e), None))


def test_hot_reload_under_load_and_tampered_version_refused(server, schema, small_frame):
    s, settings, tmp = server
    reg = Registry(settings)
    v2 = register_bundle(settings, fit_bundle(schema, small_frame, classifier="random_forest", seed=1), tmp)
    stop, results = threading.Event(), []
    threads = [threading.Thread(target=_load, args=(s.base, stop, results)) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        reg.promote(v2, "champion")
        promoted_at = len(results)
        deadline = time.time() + 10
        while time.time() < deadline and not any(v == v2 for _, v in results[promoted_at:][-20:]):
            time.sleep(0.2)
        time.sleep(2.5)  # both workers past one reload interval
        tail = [v for _, v in results[-40:]]
        # a tampered version: promoted, but refused; the current champion keeps serving
        v3 = register_bundle(settings, fit_bundle(schema, small_frame, seed=2), tmp)
        f = reg.bundle_path(v3) / "model.ubj"
        f.write_bytes(f.read_bytes()[:-10] + b"0123456789")
        reg.promote(v3, "champion")
        time.sleep(3)
        after_tamper = [v for _, v in results[-40:]]
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    failures = [r for r in results if r[0] != 200]
    assert not failures, failures[:5]
    assert len(results) > 100
    assert results[0][1] == "1" and set(tail) == {v2}
    assert set(after_tamper) == {v2}  # v3 refused, v2 still serving
    status, body, _ = http("GET", s.base + "/ready")
    assert status == 200 and json.loads(body)["model"]["version"] == v2
    refused = [json.loads(x) for x in s.log.read_text().splitlines()
               if x.startswith("{") and '"refused model version"' in x]
    assert refused and refused[0]["model.version"] == v3 and "refusing to load" in refused[0]["error.message"]
    metrics = http("GET", s.base + "/metrics")[1].decode()
    assert 'credit_score_model_reloads_total{alias="champion",outcome="refused"}' in metrics


def test_fresh_start_with_a_broken_challenger_serves_the_champion(store, schema, small_frame):
    """Acceptance 6: the challenger's artifacts are gone (MLflow raises MlflowException, not a BundleError):
    a fresh gunicorn start boots both workers, serves the champion, refuses and counts the challenger."""
    tmp, settings = store
    reg = Registry(settings)
    v2 = register_bundle(settings, fit_bundle(schema, small_frame.head(600), seed=3), tmp)
    shutil.rmtree(Path(reg.client.get_model_version_download_uri(settings.model_name, v2).removeprefix("file://")))
    reg.promote(v2, "challenger")
    s = Server(server_env(tmp, CREDIT_SCORE_AB_MODE="shadow"), free_port(), tmp / "server.log")
    try:
        status, body, _ = http("GET", s.base + "/ready")
        assert status == 200 and json.loads(body)["model"]["version"] == "1"
        for _ in range(10):  # both workers: every answer from the champion, none a 5xx
            status, body, _ = http("POST", s.base + "/predict", ROW)
            assert status == 200 and json.loads(body)["model"]["version"] == "1"
        metrics = http("GET", s.base + "/metrics")[1].decode()
        assert 'credit_score_model_reloads_total{alias="challenger",outcome="refused"}' in metrics
    finally:
        s.stop()
    refused = [json.loads(x) for x in s.log.read_text().splitlines()
               if x.startswith("{") and '"refused model version"' in x]
    assert refused and {r["model.version"] for r in refused} == {v2}
    assert {r["error.type"] for r in refused} == {"MlflowException"}
    assert s.proc.returncode == 0  # no worker failed to boot (gunicorn exits non-zero when one does)


def test_graceful_shutdown_finishes_in_flight_requests(server):
    s, _, _ = server
    results: list = []
    stop = threading.Event()
    threads = [threading.Thread(target=_load, args=(s.base, stop, results, 400)) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    s.proc.send_signal(signal.SIGTERM)
    stop.set()
    for t in threads:
        t.join(10)
    assert s.proc.wait(20) == 0
    ok = [r for r in results if r[0] == 200]
    never_accepted = ("Connection refused", "Connection reset by peer")
    broken = [r for r in results if r[0] != 200 and not any(x in str(r[0]) for x in never_accepted)]
    assert ok and not broken, broken[:3]
    # a reset comes from a connection the kernel had queued when the listener closed: no worker accepted it, so
    # it was never in flight. Every request the app did answer (one "request" line each, written before the
    # response is sent) reached its client: none was cut off by the shutdown.
    lines = [json.loads(x) for x in s.log.read_text().splitlines() if x.startswith("{")]
    answered = [x for x in lines if x.get("message") == "request" and x.get("url.path") == "/predict"]
    assert len(answered) == len(ok) and all(x["http.response.status_code"] == 200 for x in answered)


def test_retrain_job_runs_to_completion(tmp_path, store):
    tmp, settings = store
    data = tmp / "train.csv"
    generate_synthetic(2000, seed=3).to_csv(data, index=False)
    cfg = tmp / "retrain.yaml"
    cfg.write_text(yaml.safe_dump({"cv_folds": 3, "classifiers": ["xgboost"], "samplers": ["none", "smote"],
                                   "xgboost": {"n_estimators": 30}, "gate": {"floors": {"roc_auc": 0.6}}}))
    s = Server(server_env(tmp, CREDIT_SCORE_DATA=str(data), CREDIT_SCORE_RETRAIN_CONFIG=str(cfg)), free_port(),
               tmp / "retrain-server.log")
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert http("POST", s.base + "/model/retrain", {}, {"Authorization": "Bearer nope"})[0] == 403
        assert http("POST", s.base + "/model/retrain")[0] == 401
        status, body, headers = http("POST", s.base + "/model/retrain", {"reason": "test"}, auth)
        assert status == 202, body
        job = json.loads(body)
        assert headers["Location"] == f"/model/retrain/{job['job_id']}"
        status, body, _ = http("POST", s.base + "/model/retrain", None, auth)
        assert status == 409 and job["job_id"] in json.loads(body)["details"][0]["problem"]
        deadline = time.time() + 240
        while time.time() < deadline:
            st = json.loads(http("GET", s.base + headers["Location"], headers=auth)[1])
            if st["status"] not in ("queued", "running"):
                break
            time.sleep(1)
        assert st["status"] == "succeeded", st
        assert st["version"] == "2" and st["alias"] == "challenger" and st["gate"]["passed"] is True
        assert st["duration_s"] > 0 and st["started_at"] and st["finished_at"]
        # the lock is free again once the job process ended
        status, body, _ = http("POST", s.base + "/model/retrain", None, auth)
        assert status == 202
        second = json.loads(body)["job_id"]
        metrics = http("GET", s.base + "/metrics")[1].decode()
        assert 'credit_score_retrain_jobs_total{outcome="succeeded"} 1.0' in metrics
        assert 'credit_score_retrain_jobs_total{outcome="rejected_busy"} 1.0' in metrics
    finally:
        s.stop()
        survivors = _stop_job_groups(settings.jobs_dir)  # nothing outlives the test, whatever happened above
    # the server stopped the job its worker had started (a job runs in its own session: only that ends it)
    assert not survivors, f"retrain job process group(s) {survivors} outlived the server"
    st = json.loads((settings.jobs_dir / f"{second}.json").read_text())
    assert st["status"] == "failed" and "stopped" in st["error"], st


def _stop_job_groups(jobs_dir: Path) -> list[int]:
    """SIGKILL the process groups of the jobs on record that are still alive (after a deadline: the server
    stops its job on exit); the groups that were found alive."""
    pgids = {st["pid"] for st in map(json.loads, map(Path.read_text, jobs_dir.glob("*.json"))) if st.get("pid")}
    wait_until(lambda: not any(process_group_alive(g) for g in pgids), 20)
    alive = sorted(g for g in pgids if process_group_alive(g))
    for g in alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(g, signal.SIGKILL)
    return alive
