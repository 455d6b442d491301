"""Static checks of monitoring/: the Grafana dashboard and provisioning files, and that every metric the
dashboard and the alert rules use is one the service or the monitor job exports (a renamed metric must not
leave a silent panel or an alert that can never fire). promtool and a real Prometheus check the PromQL itself
(tests/integration/test_monitoring_prometheus.py)."""

from __future__ import annotations

import json
import re

import yaml

from app.config import PROJECT_ROOT

MON = PROJECT_ROOT / "monitoring"
DASHBOARD = MON / "grafana" / "dashboards" / "credit-score.json"
RULES = MON / "prometheus" / "rules" / "credit-score.rules.yml"
METRIC = re.compile(r"\b(credit_score_[a-z0-9_]+)")


def exported() -> set[str]:
    """Metric names defined in the code: the service's (metrics.py) and the monitor's gauges (monitor/export.py)."""
    names: set[str] = set()
    for path in ("app/monitoring/metrics.py", "app/monitoring/monitor/export.py"):
        names |= set(re.findall(r'"(credit_score_[a-z0-9_]+)"', (PROJECT_ROOT / path).read_text()))
    return names


def used(text: str) -> set[str]:
    """Metric names in PromQL (recording-rule names have colons; a trailing _ is a prefix in a comment)."""
    return {m for m in METRIC.findall(text) if not m.endswith("_")}


def test_dashboard_structure():
    d = json.loads(DASHBOARD.read_text())
    assert d["uid"] == "credit-score" and d["schemaVersion"] >= 36
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] < 24 and g["x"] + g["w"] <= 24 and g["h"] > 0
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])
    titles = " ".join(p["title"].lower() for p in d["panels"])
    for topic in ("requests", "latency", "class and variant", "probability", "psi", "roc-auc", "retrain"):
        assert topic in titles, topic
    variables = {v["name"] for v in d["templating"]["list"]}
    assert variables == {"datasource", "job"}


def test_every_metric_in_dashboard_and_rules_is_exported():
    names = exported()
    for source in (DASHBOARD, RULES):
        for m in used(source.read_text()):
            stems = {m} | {m.removesuffix(s) for s in ("_bucket", "_sum", "_count")}
            assert stems & names, f"{source.name} uses {m}, which nothing exports"


def test_provisioning_files():
    ds = yaml.safe_load((MON / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert ds["apiVersion"] == 1 and ds["datasources"][0]["type"] == "prometheus"
    prov = yaml.safe_load((MON / "grafana" / "provisioning" / "dashboards" / "credit-score.yml").read_text())
    p = prov["providers"][0]
    assert p["type"] == "file" and p["options"]["path"].startswith("/")


def test_alert_rules_have_severity_and_text():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    for g in groups:
        for r in g["rules"]:
            if "alert" in r:
                assert r["labels"]["severity"] in ("page", "warning"), r["alert"]
                assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
