"""Drive the real service (`credit-score serve`, gunicorn) through every kind of log line it writes.

The log file this produces is what the ELK tests ship: the contract test reads its JSON lines, Filebeat
ingests the file, and the events Filebeat writes are bulk-indexed into an OpenSearch-API store.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings
from app.registry import Registry
from tests.helpers import fit_bundle, register_bundle
from tests.integration.test_serve_gunicorn import Server, http, server_env
from tests.monitoring_helpers import wait_for
from tests.stores import seed_mlflow_store
from tests.tools import free_port
from tests.unit.test_api import ROW, TOKEN


@dataclass
class ServiceRun:
    log: Path  # the service's stdout (gunicorn and app), as a file on disk
    logs: list[Path]  # that file, then the store-outage run's and the monitor job's (credit-score*.log)
    lines: list[dict]  # its JSON lines and those of the jobs around it (store outage, monitor), decoded
    raw: list[str]  # every line, JSON or not
    versions: dict[str, str]  # champion / challenger / promoted / tampered -> model version
    statuses: dict[str, int]  # what each driven call answered


def _json_lines(log: Path) -> list[dict]:
    out = []
    for x in log.read_text().splitlines():
        try:
            if x.startswith("{"):
                out.append(json.loads(x))
        except ValueError:  # a line still being written
            continue
    return out


def _wait_for(log: Path, what: str, match, timeout: float = 60.0) -> None:
    """Until a JSON line of ``log`` satisfies ``match`` (decoded: independent of the JSON's spacing)."""
    if not wait_for(lambda: any(match(d) for d in _json_lines(log)), timeout):
        raise AssertionError(f"{what} never appeared in {log}:\n{log.read_text()[-2000:]}")


def drive_service(tmp: Path, schema, frame) -> ServiceRun:
    """Champion + challenger in shadow mode, feature logging on, then: predictions, a 422, a batch, model
    info, a 404, /ready, retrain with a wrong token (403), a retrain job (202; it fails fast: its data file does
    not exist), a second retrain while it runs (409), an unreadable job status (an unhandled error: 500 with a
    stack trace in the log), a promotion (model reload lines) and a tampered version (refused-model lines).
    Then the same service with its store down, and the monitor job on the run's store."""
    seed_mlflow_store(tmp / "models" / "mlflow.db")
    settings = Settings(models_dir=tmp / "models", reports_dir=tmp / "reports")
    reg = Registry(settings)
    xgb, forest = fit_bundle(schema, frame, threshold=0.3), fit_bundle(schema, frame, classifier="random_forest")
    v1 = register_bundle(settings, xgb, tmp)
    v2 = register_bundle(settings, forest, tmp)
    reg.promote(v1, "champion")
    reg.promote(v2, "challenger")
    jobs = tmp / "jobs"
    (jobs / "deadbeef.json").mkdir(parents=True)  # a status "file" that is a directory: reading it fails
    env = server_env(tmp, CREDIT_SCORE_AB_MODE="shadow", CREDIT_SCORE_LOG_FEATURES="true",
                     CREDIT_SCORE_STATE_DIR=str(jobs), CREDIT_SCORE_DATA=str(tmp / "no-such-data.csv"))
    log = tmp / "credit-score.log"
    server = Server(env, free_port(), log)
    statuses: dict[str, int] = {}
    admin = {"Authorization": f"Bearer {TOKEN}"}
    try:
        b = server.base
        statuses["ready"] = http("GET", b + "/ready")[0]
        for i in range(6):
            statuses["predict"] = http("POST", b + "/predict", dict(ROW, age=24 + 7 * i),
                                       {"X-Request-ID": f"elk-{i}"})[0]
        statuses["predict_invalid"] = http("POST", b + "/predict", dict(ROW, age="x"))[0]
        statuses["batch"] = http("POST", b + "/predict/batch", {"instances": [ROW, dict(ROW, pay_0=-1)]})[0]
        statuses["model_info"] = http("GET", b + "/model/info")[0]
        statuses["not_found"] = http("GET", b + "/no-such-endpoint")[0]
        statuses["retrain_forbidden"] = http("POST", b + "/model/retrain", {},
                                             {"Authorization": "Bearer wrong-token"})[0]
        status, body, _ = http("POST", b + "/model/retrain", {"reason": "elk test"}, admin)
        statuses["retrain_started"] = status
        job = json.loads(body).get("job_id") if status == 202 else None
        statuses["retrain_busy"] = http("POST", b + "/model/retrain", {}, admin)[0]
        statuses["job_status_broken"] = http("GET", b + "/model/retrain/deadbeef", headers=admin)[0]
        # a new champion: every worker logs "model loaded" with the previous version
        v3 = register_bundle(settings, xgb, tmp, trained_at="2026-01-01T00:00:00Z")  # the monitor's schedule
        reg.promote(v3, "champion")
        _wait_for(log, "a reload from the first champion", lambda d: d.get("model.previous_version") == v1)
        # a tampered version: refused, logged with the reason
        v4 = register_bundle(settings, xgb, tmp)
        f = reg.bundle_path(v4) / "model.ubj"
        f.write_bytes(f.read_bytes()[:-10] + b"0123456789")
        reg.promote(v4, "champion")
        _wait_for(log, "the refused version", lambda d: d.get("message") == "refused model version")
        statuses["predict_after_reload"] = http("POST", b + "/predict", ROW, {"X-Request-ID": "elk-after"})[0]
        if job:  # the job process ends by itself (no data); wait for it so that nothing outlives the test
            deadline = time.time() + 90
            while time.time() < deadline:
                st = json.loads(http("GET", b + f"/model/retrain/{job}", headers=admin)[1])
                if st.get("status") not in ("queued", "running"):
                    break
                time.sleep(0.5)
    finally:
        server.stop()
    (jobs / "deadbeef.json").rmdir()
    reg.promote(v3, "champion")  # the good version back (the tampered one was refused, never served)
    logs = [log, _store_outage(tmp, dict(ROW, age=30)), _monitor_runs(tmp, jobs)]
    raw = [x for f in logs for x in f.read_text().splitlines() if x.strip()]
    lines = [json.loads(x) for x in raw if x.startswith("{")]
    return ServiceRun(log=log, logs=logs, lines=lines, raw=raw, statuses=statuses,
                      versions={"champion": v1, "challenger": v2, "promoted": v3, "tampered": v4})


def _store_outage(tmp: Path, row: dict) -> Path:
    """The service with its prediction store down (PostgreSQL on a port nobody listens on): it answers, and
    logs the store failure and the dropped records (at the latest when it shuts down)."""
    url = f"postgresql+psycopg://credit_score@127.0.0.1:{free_port()}/predictions"
    log = tmp / "credit-score-store-down.log"
    server = Server(server_env(tmp, CREDIT_SCORE_STORE_URL=url, CREDIT_SCORE_STORE_RETRY_INTERVAL="0.2",
                               CREDIT_SCORE_STORE_FLUSH_INTERVAL="0.1"), free_port(), log)
    try:
        for i in range(4):
            assert http("POST", server.base + "/predict", row, {"X-Request-ID": f"elk-store-{i}"})[0] == 200
        _wait_for(log, "a store line", lambda d: d.get("message", "").startswith("prediction store"))
    finally:
        server.stop()
    _wait_for(log, "a drop count", lambda d: "store.dropped" in d)
    return log


def _monitor_runs(tmp: Path, jobs: Path) -> Path:
    """`credit-score monitor` three times on the driven run's store, with a retrain schedule that is due:
    a dry run (policy triggered, no job), a run while a job holds the retrain lock (busy), and a run that
    starts a job (it fails fast: no data). Their JSON log lines (stderr) go to one file."""
    env = server_env(tmp, CREDIT_SCORE_STATE_DIR=str(jobs), CREDIT_SCORE_DATA=str(tmp / "no-such-data.csv"),
                     CREDIT_SCORE_RETRAIN_EVERY_DAYS="0.000001", CREDIT_SCORE_RETRAIN_COOLDOWN_HOURS="0")
    exe = str(Path(sys.executable).with_name("credit-score"))
    out = tmp / "credit-score-monitor.log"
    with out.open("w") as f:
        def monitor(*args: str) -> None:
            rc = subprocess.run([exe, "monitor", *args], env=env, stdout=subprocess.DEVNULL, stderr=f,  # noqa: S603
                                timeout=120).returncode
            assert rc == 0, out.read_text()[-2000:]

        monitor("--dry-run")
        fd = os.open(jobs / "retrain.lock", os.O_RDWR | os.O_CREAT, 0o640)
        try:  # what a running job holds: the lock, with its id in the file
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.pwrite(fd, b"elkbusy", 0)
            monitor()
        finally:
            os.close(fd)
        monitor()
    _wait_for(out, "the triggered job", lambda d: "retrain.job_id" in d)
    job = next(d["retrain.job_id"] for d in _json_lines(out) if d.get("message") == "retrain triggered")
    deadline = time.time() + 90  # the job ends by itself (no data); nothing outlives the test
    while time.time() < deadline:
        status = json.loads((jobs / f"{job}.json").read_text())
        if status["status"] not in ("queued", "running"):
            break
        time.sleep(0.5)
    return out
