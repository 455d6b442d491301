"""The Kubernetes retrain runner (app/jobs/kubernetes.py) against a stand-in for the Kubernetes API on 127.0.0.1.

No cluster runs here: the stand-in implements the few REST calls the runner makes (CronJob get, Job list / create
/ delete, pod list) with label selectors, and serves our real CronJob (kubernetes/base). It proves the
runner's requests and its reading of Job states, not a cluster's behaviour.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from app import jobs
from app.config import PROJECT_ROOT, Settings
from app.jobs.kubernetes import DEADLINE_GRACE_S, JOB_ID_LABEL, KubeError, job_from_template
from app.jobs.summary import format_train_summary
from tests.tools import free_port

NS = "credit-score"
TOKEN = "sa-token-for-tests"  # noqa: S105 (a test value)
CRON = yaml.safe_load((PROJECT_ROOT / "kubernetes" / "base" / "train-cronjob.yaml").read_text())


class FakeKube:
    def __init__(self):
        self.jobs: dict[str, dict] = {}
        self.pods: dict[str, dict] = {}
        self.calls: list[tuple[str, str, str | None]] = []
        self.on_create = None  # hook: another pod creating a Job at the same moment
        self.clock = int(time.time()) - 60

    def stamp(self) -> str:
        """Creation times a second apart, a minute ago (the runner compares them with now: deadlines)."""
        self.clock += 1
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock))

    def select(self, items, selector: str | None):
        if not selector:
            return list(items)
        k, _, v = selector.partition("=")
        return [x for x in items if x["metadata"].get("labels", {}).get(k) == v]


@pytest.fixture
def kube():
    fake = FakeKube()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _send(self, code, body):
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method):
            u = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(u.query).items()}
            fake.calls.append((method, u.path, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"message": "Unauthorized"})
            base = f"/apis/batch/v1/namespaces/{NS}"
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            if method == "GET" and u.path == f"{base}/cronjobs/credit-score-train":
                return self._send(200, CRON)
            if u.path == f"{base}/jobs" and method == "GET":
                return self._send(200, {"items": fake.select(fake.jobs.values(), q.get("labelSelector"))})
            if u.path == f"{base}/jobs" and method == "POST":
                name = body["metadata"]["name"]
                if name in fake.jobs:
                    return self._send(409, {"message": "AlreadyExists"})
                if fake.on_create:
                    fake.on_create()
                body["metadata"]["creationTimestamp"] = fake.stamp()
                body["status"] = {}
                fake.jobs[name] = body
                return self._send(201, body)
            if u.path.startswith(f"{base}/jobs/") and method == "DELETE":
                fake.jobs.pop(u.path.rsplit("/", 1)[1], None)
                return self._send(200, {"status": "Success"})
            if u.path == f"/api/v1/namespaces/{NS}/pods" and method == "GET":
                return self._send(200, {"items": fake.select(fake.pods.values(), q.get("labelSelector"))})
            return self._send(404, {"message": "not found"})

        def do_GET(self):  # noqa: N802
            self._route("GET")

        def do_POST(self):  # noqa: N802
            self._route("POST")

        def do_DELETE(self):  # noqa: N802
            self._route("DELETE")

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()


@pytest.fixture
def kube_settings(kube, tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    return Settings(models_dir=tmp_path / "models", job_runner="kubernetes", kube_api_url=kube.url,
                    kube_namespace=NS, kube_token_file=token)


def _finish(kube, name, condition, message=""):
    kube.jobs[name]["status"] = {"startTime": "2026-11-23T10:01:00Z", "conditions": [
        {"type": condition, "status": "True", "message": message, "lastTransitionTime": "2026-11-23T10:09:00Z"}]}


def test_start_creates_a_job_from_the_cronjob_template(kube, kube_settings):
    status = jobs.start(kube_settings, reason="drift")
    job = kube.jobs[status["kubernetes_job"]]
    assert status["status"] == "queued" and job["metadata"]["labels"][JOB_ID_LABEL] == status["id"]
    assert job["metadata"]["annotations"]["credit-score.io/retrain-reason"] == "drift"
    tmpl = CRON["spec"]["jobTemplate"]["spec"]
    assert job["spec"]["podFailurePolicy"] == tmpl["podFailurePolicy"]  # bad data / failed gate: no retry
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "credit-score-train" and c["command"][:2] == ["credit-score", "train"]
    assert {"name": "CREDIT_SCORE_JOB_ID", "value": status["id"]} in c["env"]
    assert job["spec"]["template"]["metadata"]["labels"][JOB_ID_LABEL] == status["id"]
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in kube.calls)


def test_one_job_at_a_time(kube, kube_settings):
    first = jobs.start(kube_settings, reason="api")
    with pytest.raises(jobs.JobBusy) as busy:
        jobs.start(kube_settings, reason="api")
    assert busy.value.running == first["id"]
    _finish(kube, first["kubernetes_job"], "Complete")
    assert jobs.start(kube_settings, reason="api")["id"] != first["id"]


def test_two_pods_at_the_same_moment_leave_one_job(kube, kube_settings):
    def other_pod_was_faster():
        kube.on_create = None
        kube.jobs["credit-score-retrain-other"] = {
            "metadata": {"name": "credit-score-retrain-other", "creationTimestamp": kube.stamp(),
                         "labels": {JOB_ID_LABEL: "other", "credit-score.io/retrain": "true"}}, "status": {}}

    kube.on_create = other_pod_was_faster
    with pytest.raises(jobs.JobBusy) as busy:
        jobs.start(kube_settings, reason="api")
    assert busy.value.running == "other" and list(kube.jobs) == ["credit-score-retrain-other"]


def test_status_follows_the_job_and_reads_the_result_from_the_termination_message(kube, kube_settings):
    st = jobs.start(kube_settings, reason="api")
    name = st["kubernetes_job"]
    assert jobs.read_status(kube_settings, st["id"])["status"] == "queued"
    kube.jobs[name]["status"] = {"active": 1, "startTime": kube.stamp()}
    assert jobs.read_status(kube_settings, st["id"])["status"] == "running"
    _finish(kube, name, "Complete")
    # what `credit-score train --summary-file /dev/termination-log` leaves (a 4 KiB message at most)
    result = {"version": "7", "alias": "challenger", "gate": {"passed": True, "reasons": []},
              "selected": {"label": "xgboost+none"}, "holdout": {f"m{i}": 0.5 for i in range(400)},
              "grid": [{"row": "x" * 100}] * 100}
    message = format_train_summary(result)
    assert len(message.encode()) <= 4096
    kube.pods["p1"] = {"metadata": {"name": "p1", "labels": {"job-name": name}, "creationTimestamp": "x"},
                       "status": {"containerStatuses": [
                           {"name": "vault-agent", "state": {"terminated": {"message": "not ours"}}},
                           {"name": "train", "state": {"terminated": {"exitCode": 0, "message": message}}}]}}
    done = jobs.read_status(kube_settings, st["id"])
    assert done["status"] == "succeeded" and done["version"] == "7" and done["gate"]["passed"] is True
    assert done["selected"] == {"label": "xgboost+none"}
    assert done["finished_at"] == "2026-11-23T10:09:00Z"
    assert jobs.read_status(kube_settings, "0123abcd") is None
    # no pod log is ever read (the Role has no pods/log)
    assert not any(path.endswith("/log") for _, path, _ in kube.calls)


def test_a_job_whose_pod_is_gone_is_failed_after_its_deadline_not_running_for_ever(kube, kube_settings):
    st = jobs.start(kube_settings, reason="api")
    job = kube.jobs[st["kubernetes_job"]]
    deadline = job["spec"]["activeDeadlineSeconds"]
    started = time.time() - deadline - DEADLINE_GRACE_S + 30
    job["status"] = {"startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))}  # no active pod
    assert jobs.read_status(kube_settings, st["id"])["status"] == "running"
    started -= 60
    job["status"] = {"startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))}
    gone = jobs.read_status(kube_settings, st["id"])
    assert gone["status"] == "failed" and "after the Job's deadline" in gone["error"]
    # and it no longer blocks the next retrain
    assert jobs.start(kube_settings, reason="api")["id"] != st["id"]


def test_the_job_environment_is_the_templates_never_the_services(kube, kube_settings, monkeypatch):
    for name in ("VAULT_TOKEN", "CREDIT_SCORE_ADMIN_TOKEN", "CREDIT_SCORE_FEEDBACK_TOKEN",
                 "CREDIT_SCORE_DATABASE_URL"):
        monkeypatch.setenv(name, "secret-of-the-serving-pod")
    st = jobs.start(kube_settings, reason="api")
    (c,) = kube.jobs[st["kubernetes_job"]]["spec"]["template"]["spec"]["containers"]
    (tmpl,) = CRON["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert c["env"] == [*tmpl.get("env", []), {"name": "CREDIT_SCORE_JOB_ID", "value": st["id"]}]
    assert c["envFrom"] == tmpl["envFrom"]
    assert "secret-of-the-serving-pod" not in json.dumps(kube.jobs)


@pytest.mark.parametrize(("message", "expected"), [
    ("Container train for pod credit-score/p failed with exit code 3 matching FailJob rule at index 0",
     "gate_failed"),
    ("Container train for pod credit-score/p failed with exit code 1 matching FailJob rule at index 0", "failed"),
    ("Job was active longer than specified deadline", "failed")])
def test_failed_jobs_say_why(kube, kube_settings, message, expected):
    st = jobs.start(kube_settings, reason="api")
    _finish(kube, st["kubernetes_job"], "Failed", message)
    got = jobs.read_status(kube_settings, st["id"])
    assert got["status"] == expected and got["error"] == message


def test_the_monitor_sees_the_jobs_newest_first(kube, kube_settings):
    a = jobs.start(kube_settings, reason="monitor: drift")
    _finish(kube, a["kubernetes_job"], "Complete")
    b = jobs.start(kube_settings, reason="api")
    from app.monitoring.monitor import last_jobs

    assert [j["id"] for j in last_jobs(kube_settings)] == [b["id"], a["id"]]
    assert last_jobs(kube_settings)[1]["reason"] == "monitor: drift"


def test_api_errors_are_clear_and_never_leak_the_token(kube_settings, tmp_path):
    down = kube_settings.model_copy(update={"kube_api_url": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(KubeError) as e:
        jobs.start(down, reason="api")
    assert "Kubernetes API GET" in str(e.value) and TOKEN not in str(e.value)
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token")
    with pytest.raises(KubeError, match="HTTP 401"):
        jobs.start(kube_settings.model_copy(update={"kube_token_file": wrong}), reason="api")


def test_retrain_endpoint_with_the_kubernetes_runner(kube, kube_settings, monkeypatch):
    from app import create_app

    admin = "admin-token-for-kube-tests-0123"
    cfg = {"models_dir": kube_settings.models_dir, "job_runner": "kubernetes", "kube_api_url": kube.url,
           "kube_namespace": NS, "kube_token_file": kube_settings.kube_token_file, "admin_token": admin}
    c = create_app(cfg, start_reload=False).test_client()
    h = {"Authorization": f"Bearer {admin}"}
    r = c.post("/model/retrain", json={"reason": "k8s"}, headers=h)
    assert r.status_code == 202
    job_id = r.json["job_id"]
    assert c.get(f"/model/retrain/{job_id}", headers=h).json["runner"] == "kubernetes"
    assert c.post("/model/retrain", json={}, headers=h).status_code == 409
    down = dict(cfg, kube_api_url=f"http://127.0.0.1:{free_port()}")
    c2 = create_app(down, start_reload=False).test_client()
    r = c2.post("/model/retrain", json={}, headers=h)
    assert r.status_code == 503 and r.json["details"][0]["field"] == "job_runner"
    assert c2.get(f"/model/retrain/{job_id}", headers=h).status_code == 503


def test_job_name_and_labels_are_valid_kubernetes_names():
    job = job_from_template(CRON, "0123456789abcdef0123456789abcdef", "x" * 500)
    name = job["metadata"]["name"]
    assert len(name) <= 63 and name.replace("-", "").isalnum() and name == name.lower()
    assert len(job["metadata"]["annotations"]["credit-score.io/retrain-reason"]) == 200
