"""The prediction store down under load (acceptance 4), and the store on a real PostgreSQL.

* A SQLite store that cannot be opened (its directory is a regular file): wrk drives /predict; zero failed
  requests, the dropped records are counted on /metrics and logged.
* A real PostgreSQL (Debian package, started in the test on 127.0.0.1): predictions, feedback and the monitor work
  on it; then PostgreSQL is stopped in the middle of a wrk run: zero failed requests, drops counted; after a
  restart the writers recover by themselves.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from app.monitoring.store import PredictionStore
from app.registry import Registry
from tests.cli_runner import invoke_cli
from tests.conftest import make_settings
from tests.integration.test_serve_gunicorn import Server, http, server_env
from tests.monitoring_helpers import applicants, register_profiled, wait_for, window
from tests.tools import free_port, which
from tests.unit.test_api import ROW, TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def wrk(url: str, body: dict, seconds: int, workdir: Path, connections: int = 8) -> dict[str, int]:
    exe = which("wrk")
    assert exe, "wrk comes with the Debian package wrk"
    script = workdir / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(json.dumps(body))}\n")
    out = subprocess.run([exe, "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0, "output": out}


def metric(text: str, name: str, **labels) -> float:
    """Sum of the samples called ``name`` with these labels in a Prometheus exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(smp.value for fam in text_string_to_metric_families(text) for smp in fam.samples
               if smp.name == name and all(smp.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture
def champion(tmp_path, schema):
    settings = make_settings(tmp_path)
    v1 = register_profiled(settings, schema, window(3000, seed=1), tmp_path)
    Registry(settings).promote(v1, "champion")
    return tmp_path


def test_unreachable_store_under_load_no_failed_requests(champion):
    tmp = champion
    (tmp / "blocker").write_text("the store's directory is a regular file: the database cannot be opened")
    env = server_env(tmp, CREDIT_SCORE_STORE_URL=f"sqlite:///{tmp / 'blocker' / 'predictions.db'}",
                     # a failing batch is retried for ~1.5 s while the queue fills: a small batch and queue
                     # fill it at ~10 requests/s per worker, so a loaded CI machine sees queue_full drops too
                     CREDIT_SCORE_STORE_QUEUE_SIZE="10", CREDIT_SCORE_STORE_BATCH_SIZE="5",
                     CREDIT_SCORE_STORE_RETRY_INTERVAL="0.5",
                     CREDIT_SCORE_LOG_LEVEL="WARNING")
    s = Server(env, free_port(), tmp / "server.log")
    try:
        res = wrk(s.base + "/predict", ROW, 6, tmp)
        assert res["requests"] > 300, res["output"]
        assert res["non2xx"] == 0 and res["socket_errors"] == 0, res["output"]
        text = http("GET", s.base + "/metrics")[1].decode()
        dropped = metric(text, "credit_score_store_dropped_total")
        full = metric(text, "credit_score_store_dropped_total", reason="queue_full")
        assert full > 0 and 0 < dropped <= res["requests"]
        assert metric(text, "credit_score_store_written_total") == 0
        assert http("GET", s.base + "/ready")[0] == 200
    finally:
        s.stop()
    logs = [json.loads(x) for x in s.log.read_text().splitlines() if x.startswith("{")]
    store_logs = [x for x in logs if x["log.logger"] == "credit_score.store"]
    assert any(x["message"].startswith("prediction store write failed") for x in store_logs)
    drops = [x for x in store_logs if x["message"] == "prediction records dropped"]
    reasons = " ".join(x["store.dropped_reasons"] for x in drops)
    assert drops and "queue_full=" in reasons and "store_error=" in reasons
    assert sum(x["store.dropped"] for x in drops) > 0
    assert len(store_logs) < 50  # rate-limited, not one line per request


def test_gunicorn_shutdown_flushes_the_queue(champion):
    """Writes that are still queued when the service stops (SIGTERM) are written before the workers exit."""
    tmp = champion
    env = server_env(tmp, CREDIT_SCORE_STORE_FLUSH_INTERVAL="600", CREDIT_SCORE_STORE_BATCH_SIZE="100000",
                     CREDIT_SCORE_LOG_LEVEL="WARNING")
    s = Server(env, free_port(), tmp / "server.log")
    try:
        for i in range(60):
            assert http("POST", s.base + "/predict?explain=none", ROW, {"X-Request-ID": f"q{i}"})[0] == 200
        store = PredictionStore(f"sqlite:///{tmp / 'models' / 'predictions.db'}")
        assert store.count() == 0  # nothing flushed yet: a 10-minute flush interval
    finally:
        s.stop()
    assert s.proc.returncode == 0
    assert store.count() == 60


# ---- PostgreSQL --------------------------------------------------------------------------------------------
def _pg_bin(name: str) -> str | None:
    found = which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return cands[-1] if cands else None


class Postgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (as user postgres when the tests run as root)."""

    def __init__(self):
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        assert self.initdb and self.pg_ctl, "PostgreSQL comes with the Debian package postgresql"
        # not under pytest's tmp (mode 0700, owned by root): the postgres user must reach the directory
        self.dir = Path(tempfile.mkdtemp(prefix="credit-score-pg-"))
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        subprocess.run(self.prefix + [self.initdb, "-D", str(self.dir / "data"), "--auth=trust", "-U", "postgres",
                                      "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120)
        self.start()

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(self.prefix + [self.pg_ctl, "-D", str(self.dir / "data"), "-o", opts, "-l",
                                      str(self.dir / "pg.log"), "-w", "-t", "60", "start"],
                       check=True, capture_output=True, timeout=90)

    def stop(self) -> None:
        subprocess.run(self.prefix + [self.pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def postgres():
    import psycopg  # noqa: F401 (the driver is a runtime dependency: requirements.txt)

    pg = Postgres()
    yield pg
    pg.destroy()


def test_postgres_store_predictions_feedback_monitor_and_outage(champion, postgres, schema):
    tmp = champion
    env = server_env(tmp, CREDIT_SCORE_STORE_URL=postgres.url, CREDIT_SCORE_STORE_QUEUE_SIZE="300",
                     CREDIT_SCORE_STORE_RETRY_INTERVAL="0.5", CREDIT_SCORE_STORE_FLUSH_INTERVAL="0.2",
                     CREDIT_SCORE_MONITOR_MIN_ROWS="100", CREDIT_SCORE_LOG_LEVEL="WARNING")
    store = PredictionStore(postgres.url)
    s = Server(env, free_port(), tmp / "server.log")
    try:
        rows, ys = applicants(window(300, seed=6), schema)
        ids = []
        for i, r in enumerate(rows):
            status, answer, _ = http("POST", s.base + "/predict?explain=none", r, {"X-Request-ID": f"pg{i}"})
            assert status == 200
            ids.append(json.loads(answer)["prediction_id"])
        assert wait_for(lambda: store.count() == len(rows), 20), store.count()
        body = {"outcomes": [{"prediction_id": pid, "outcome": y} for pid, y in zip(ids, ys, strict=True)]}
        status, out, _ = http("POST", s.base + "/feedback", body, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and json.loads(out)["recorded"] == len(rows)
        proc = invoke_cli(["monitor", "--json", "--dry-run"], env, check=True)
        summary = json.loads(proc.stdout)
        assert summary["live"]["champion"]["n"] == len(rows) and summary["drift"]["status"] == "ok"
        assert summary["store"].startswith("postgresql+psycopg://postgres@127.0.0.1")

        # PostgreSQL goes down in the middle of a load run: every request is still answered
        written_before = metric(http("GET", s.base + "/metrics")[1].decode(), "credit_score_store_written_total")
        stopper = threading.Timer(1.5, postgres.stop)
        stopper.start()
        res = wrk(s.base + "/predict", ROW, 7, tmp)
        stopper.join()
        assert res["non2xx"] == 0 and res["socket_errors"] == 0, res["output"]
        text = http("GET", s.base + "/metrics")[1].decode()
        assert metric(text, "credit_score_store_dropped_total") > 0
        # back up: the writers recover by themselves (no restart of the service)
        postgres.start()

        def recovered():  # every worker that logged a failure has logged its recovery
            for _ in range(10):
                http("POST", s.base + "/predict", ROW)
            lines = [json.loads(x) for x in s.log.read_text().splitlines() if x.startswith("{")]
            failed = sum(1 for x in lines if x["message"].startswith("prediction store write failed"))
            back = sum(1 for x in lines if x["message"] == "prediction store writes recovered")
            t = http("GET", s.base + "/metrics")[1].decode()
            return failed and back >= failed and metric(t, "credit_score_store_written_total") > written_before

        assert wait_for(recovered, 60, 1.0)
        after = set()
        for i in range(20):
            status, answer, _ = http("POST", s.base + "/predict", ROW, {"X-Request-ID": f"after{i}"})
            assert status == 200
            after.add(json.loads(answer)["prediction_id"])

        def stored_ids() -> set[str]:  # a new connection each time: nothing cached from before the outage
            fresh = PredictionStore(postgres.url)
            try:
                return {r["request_id"] for r in fresh.read_predictions(*_today())}
            finally:
                fresh.dispose()

        ok = wait_for(lambda: after <= stored_ids(), 30)
        store_lines = [x for x in http("GET", s.base + "/metrics")[1].decode().splitlines()
                       if "_store_" in x and not x.startswith("#")]
        assert ok, "\n".join(store_lines) + f"\nmissing {sorted(after - stored_ids())}"
    finally:
        s.stop()
        store.dispose()
    logs = [json.loads(x) for x in s.log.read_text().splitlines() if x.startswith("{")]
    messages = [x["message"] for x in logs if x["log.logger"] == "credit_score.store"]
    assert any(m.startswith("prediction store write failed") for m in messages)
    assert "prediction store writes recovered" in messages
    assert all(x.get("store.url", "").startswith("postgresql+psycopg://postgres@") for x in logs if "store.url" in x)


def _today():
    from datetime import timedelta

    from app.monitoring.store import utcnow

    now = utcnow()
    return now - timedelta(days=1), now + timedelta(days=1)
