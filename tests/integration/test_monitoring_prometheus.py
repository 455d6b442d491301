"""Prometheus for real (Debian package): promtool checks of the shipped config and rules (acceptance 2), and a
Prometheus on 127.0.0.1 scraping a real gunicorn instance of the service; after traffic and a monitor run,
PromQL returns the request count and the drift gauge, the drift alert fires, and every dashboard query is valid
PromQL against it (acceptance 1)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from app.config import PROJECT_ROOT
from app.registry import Registry
from tests.cli_runner import invoke_cli
from tests.integration.test_serve_gunicorn import Server, http, server_env
from tests.monitoring_helpers import applicants, register_profiled, window
from tests.tools import free_port, which

pytestmark = [pytest.mark.integration]

PROM_DIR = PROJECT_ROOT / "monitoring" / "prometheus"
RULES = PROM_DIR / "rules" / "credit-score.rules.yml"
RULE_TESTS = PROM_DIR / "tests" / "credit-score.rules.test.yml"
DASHBOARD = PROJECT_ROOT / "monitoring" / "grafana" / "dashboards" / "credit-score.json"


def promtool(*args: str) -> subprocess.CompletedProcess:
    exe = which("promtool")
    assert exe, "promtool comes with the Debian package prometheus (apt-get install prometheus)"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, cwd=PROM_DIR)


def test_promtool_check_config_rules_and_rule_unit_tests():
    for args in (("check", "config", "prometheus.yml"), ("check", "rules", str(RULES)),
                 ("test", "rules", str(RULE_TESTS))):
        proc = promtool(*args)
        assert proc.returncode == 0, f"promtool {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        assert "SUCCESS" in proc.stdout + proc.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    alerts = [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]
    cases = [c for t in yaml.safe_load(RULE_TESTS.read_text())["tests"] for c in t.get("alert_rule_test", [])]
    for name in alerts:
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c["exp_alerts"] for c in mine), f"{name} has no test where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{name} has no test where it stays quiet"
    assert {"CreditScoreHighErrorRate", "CreditScorePredictLatencyP99High", "CreditScoreNoModelLoaded",
            "CreditScoreDriftDetected", "CreditScoreLiveAucBelowFloor", "CreditScoreStoreDroppingWrites",
            "CreditScoreRetrainFailed"} <= set(alerts)


def test_a_broken_rule_file_is_refused(tmp_path):
    """The checks can fail: a rule with invalid PromQL does not pass promtool."""
    bad = tmp_path / "bad.rules.yml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(foo[5m]) > 0\n")
    assert promtool("check", "rules", str(bad)).returncode != 0


# ---- a real Prometheus scraping a real service -------------------------------------------------------------
class Prometheus:
    def __init__(self, tmp: Path, target: str):
        exe = which("prometheus")
        assert exe, "prometheus comes with the Debian package prometheus"
        cfg = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())  # the shipped config, local target
        cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
        cfg["rule_files"] = [str(RULES)]
        cfg["scrape_configs"][0]["static_configs"][0]["targets"] = [target]
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "prometheus.log"
        self.proc = subprocess.Popen(
            [exe, f"--config.file={tmp / 'prometheus.yml'}", f"--web.listen-address=127.0.0.1:{self.port}",
             f"--storage.tsdb.path={tmp / 'tsdb'}", "--storage.tsdb.retention.time=1h"],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=1) as r:  # noqa: S310
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError(f"prometheus did not start:\n{self.log.read_text()[-3000:]}")

    def api(self, path: str, **params) -> dict:
        url = f"{self.base}/api/v1/{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())

    def query(self, expr: str) -> list:
        out = self.api("query", query=expr)
        assert out["status"] == "success", (expr, out)
        return out["data"]["result"]

    def value(self, expr: str) -> float | None:
        res = self.query(expr)
        return float(res[0]["value"][1]) if res else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def eventually(fn, timeout=60.0, interval=0.5):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    return last


@pytest.fixture
def champion(tmp_path, schema):
    from tests.conftest import make_settings

    settings = make_settings(tmp_path)
    v1 = register_profiled(settings, schema, window(4000, seed=1), tmp_path)
    Registry(settings).promote(v1, "champion")
    return tmp_path


@pytest.mark.slow
def test_prometheus_scrapes_requests_and_drift_from_the_service(champion, schema):
    tmp = champion
    env = server_env(tmp, CREDIT_SCORE_MONITOR_METRICS_REFRESH="1", CREDIT_SCORE_MONITOR_MIN_ROWS="100",
                     CREDIT_SCORE_STORE_FLUSH_INTERVAL="0.2", CREDIT_SCORE_LOG_LEVEL="WARNING")
    server = Server(env, free_port(), tmp / "server.log")
    prom = None
    try:
        prom = Prometheus(tmp, f"127.0.0.1:{server.port}")
        assert eventually(lambda: prom.value('up{job="credit-score"}') == 1.0, 30), prom.log.read_text()[-2000:]
        rows, _ = applicants(window(300, seed=5, shifted=True), schema)
        n = len(rows)

        def send(i):
            return http("POST", server.base + "/predict?explain=none", rows[i], {"X-Request-ID": f"p{i}"})[0]

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(send, range(n)))
        assert statuses.count(200) == n
        # the store has every prediction (both workers' writers) before the monitor reads it
        from app.monitoring.store import PredictionStore

        store = PredictionStore(f"sqlite:///{tmp / 'models' / 'predictions.db'}")
        assert eventually(lambda: store.count() == n, 20), store.count()
        proc = invoke_cli(["monitor", "--dry-run", "--json"], env, check=True)
        summary = json.loads(proc.stdout)
        assert "pay_0" in summary["drift"]["drifted"] and summary["retrain"]["triggered"]

        # PromQL: the request count (summed over both workers) and the drift gauges
        count_q = 'sum(credit_score_http_requests_total{job="credit-score", endpoint="/predict", status="200"})'
        assert eventually(lambda: prom.value(count_q) == float(n), 30), prom.value(count_q)
        assert eventually(lambda: (prom.value('max(credit_score_drift_psi{feature="pay_0"})') or 0) > 0.2, 30)
        assert prom.value('max(credit_score_drift_detected{feature="pay_0"})') == 1.0
        assert prom.value('max(credit_score_drift_detected{feature="limit_bal"})') == 0.0
        assert prom.value("max(credit_score_drift_features_drifted)") >= 3
        assert prom.value('max(credit_score_store_written_total)') is not None

        # the drift alert fires (for: 0) for the drifting features only
        def firing():
            alerts = prom.api("alerts")["data"]["alerts"]
            return {a["labels"].get("feature") for a in alerts
                    if a["labels"]["alertname"] == "CreditScoreDriftDetected" and a["state"] == "firing"}

        fired = eventually(firing, 30)
        assert fired and "pay_0" in fired and "limit_bal" not in fired
        rules = prom.api("rules")["data"]["groups"]
        assert all(r["health"] == "ok" for g in rules for r in g["rules"]), rules

        # every dashboard query is valid PromQL here; the drift and request panels return data
        dash = json.loads(DASHBOARD.read_text())
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        exprs += [a["expr"] for a in dash["annotations"]["list"]]
        with_data = set()
        for e in exprs:
            q = (e.replace("$__rate_interval", "1m").replace("$__range", "1h").replace("$job", ".*"))
            out = prom.api("query", query=q)
            assert out["status"] == "success", (e, out)
            if out["data"]["result"]:
                with_data.add(e)
        assert any("credit_score_drift_psi" in e for e in with_data)
        assert any("credit_score_http_requests_total" in e for e in with_data)
    finally:
        if prom:
            prom.stop()
        server.stop()
    logs = [json.loads(x) for x in server.log.read_text().splitlines() if x.startswith("{")]
    assert not [x for x in logs if x["log.level"] in ("error", "critical")], "errors in the service log"
    assert not [x for x in logs if x["log.logger"] == "credit_score.store"], "the store complained"
