"""Issue 14, acceptance 5: two gunicorn workers and a monitor process share one PostgreSQL prediction store.

A real PostgreSQL (started by the test on 127.0.0.1), a real `credit-score serve` with 2 workers whose store is
that database, and `credit-score monitor --json` run by the test process (tests/cli_runner.invoke_cli: apart from
the server's processes, as a CronJob or timer runs it) with the same URL. Once both workers are up, predictions
are sent concurrently and both workers must have served some (each worker's own counters, read from its file in
the Prometheus multiprocess directory, say which worker did what); the outcomes are posted one request each, so
both workers handle feedback too, and every one of them joins its prediction whichever worker scored it; the
monitor counts every prediction and every outcome.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.monitoring.store import PredictionStore
from tests.cli_runner import invoke_cli
from tests.integration.test_monitoring_store_outage import champion, postgres  # noqa: F401 (fixtures)
from tests.integration.test_serve_gunicorn import Server, http, server_env
from tests.monitoring_helpers import applicants, wait_for, window
from tests.tools import free_port
from tests.unit.test_api import TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 240  # predictions (and outcomes)


def per_worker(prom_dir: Path, name: str, **labels) -> dict[int, float]:
    """``name``'s samples with these labels, summed per gunicorn worker: each worker writes its counters to
    ``counter_<pid>.db`` in the multiprocess directory; each file is read alone with prometheus_client's own
    collector (a directory of one file)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    out: dict[int, float] = {}
    for f in prom_dir.glob("counter_*.db"):
        pid = int(re.fullmatch(r"counter_(\d+)\.db", f.name).group(1))
        with tempfile.TemporaryDirectory() as one:
            os.symlink(f, Path(one) / f.name)
            reg = CollectorRegistry()
            MultiProcessCollector(reg, path=one)
            total = sum(s.value for fam in reg.collect() for s in fam.samples
                        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))
        if total:
            out[pid] = out.get(pid, 0.0) + total
    return out


def loaded_workers(base: str) -> set[str]:
    """The pids of the workers that report a loaded champion on /metrics."""
    text = http("GET", base + "/metrics")[1].decode()
    return {x.split('pid="')[1].split('"')[0] for x in text.splitlines()
            if x.startswith("credit_score_model_loaded{") and x.rstrip().endswith(" 1.0")}


def test_two_workers_and_the_monitor_share_one_postgres_store(champion, postgres, schema):  # noqa: F811
    tmp = champion
    env = server_env(tmp, CREDIT_SCORE_STORE_URL=postgres.url, CREDIT_SCORE_STORE_FLUSH_INTERVAL="0.2",
                     CREDIT_SCORE_MONITOR_MIN_ROWS="100", CREDIT_SCORE_LOG_LEVEL="WARNING")
    prom = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    store = PredictionStore(postgres.url)
    s = Server(env, free_port(), tmp / "server.log")
    try:
        # both workers up (a worker boots in seconds: the first to answer /health may be alone for a while)
        assert wait_for(lambda: len(loaded_workers(s.base)) == 2, 60), loaded_workers(s.base)
        rows, ys = applicants(window(N, seed=21), schema)

        def predict(i: int) -> str:
            status, answer, _ = http("POST", s.base + "/predict?explain=none", rows[i], {"X-Request-ID": f"w{i}"})
            assert status == 200, answer
            return json.loads(answer)["prediction_id"]

        with ThreadPoolExecutor(6) as pool:  # concurrent requests: gunicorn's sync workers both take some
            ids = list(pool.map(predict, range(N)))
        served = per_worker(prom, "credit_score_predictions_total")
        assert len(served) == 2 and all(n > 0 for n in served.values()), served
        assert sum(served.values()) == N
        # each worker's writer writes its own predictions to the one database
        assert wait_for(lambda: store.count() == N, 20), store.count()
        assert len(per_worker(prom, "credit_score_store_written_total")) == 2

        def feedback(i: int) -> dict:
            body = {"prediction_id": ids[i], "outcome": ys[i]}
            status, out, _ = http("POST", s.base + "/feedback", body, {"Authorization": f"Bearer {TOKEN}"})
            assert status == 200, out
            return json.loads(out)

        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(feedback, range(N)))
        assert sum(r["recorded"] for r in results) == N
        assert not [r for r in results if r["unknown"] or r["conflicts"] or r["duplicates"]]
        recorded = per_worker(prom, "credit_score_feedback_total", result="recorded")
        assert len(recorded) == 2 and sum(recorded.values()) == N, recorded
        assert set(recorded) == set(served)  # the same two workers scored and recorded

        # the monitor: apart from the server's processes, the same database
        menv = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        summary = json.loads(invoke_cli(["monitor", "--json", "--dry-run"], menv, check=True).stdout)
        assert summary["store"].startswith("postgresql+psycopg://postgres@127.0.0.1")
        assert summary["window"]["predictions"] == N and summary["window"]["by_variant"] == {"champion": N}
        assert summary["performance_window"]["labelled"] == N
        assert summary["live"]["champion"]["n"] == N
        assert summary["drift"]["status"] == "ok"
    finally:
        s.stop()
        store.dispose()
    assert s.proc.returncode == 0
