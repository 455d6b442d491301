"""Stage 5, export: the run's summary as Prometheus gauges (the store's ``monitor_runs`` table, and the
node-exporter textfile when configured) and as ``monitor.json`` and ``report.html``."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from app.config import Settings
from app.monitoring.monitor.analyse import LIVE_METRICS
from app.monitoring.monitor.decide import parse_time
from app.monitoring.store import PredictionStore

EPOCH = datetime(1970, 1, 1)


def export(settings: Settings, store: PredictionStore, summary: dict[str, Any], now: datetime,
           textfile: Path | None = None, write_report: bool = True) -> Path | None:
    """Write every output of the run; returns the HTML report's path (None when ``write_report`` is off)."""
    exposition = gauges(summary, now)
    store.save_monitor_run(exposition, brief(summary), now)
    path = textfile or settings.monitor_textfile
    if path:
        write_textfile(Path(path), exposition)
    return write_reports(settings, summary) if write_report else None


def brief(summary: dict[str, Any]) -> dict[str, Any]:
    """What the store keeps of a run beside its gauges."""
    keep = ("time", "champion", "challenger", "window", "retrain", "duration_s")
    out = {k: summary.get(k) for k in keep}
    out["drifted"] = summary["drift"]["drifted"]
    out["drift_status"] = summary["drift"]["status"]
    out["verdict"] = (summary.get("abtest") or {}).get("verdict")
    return out


# ---- Prometheus --------------------------------------------------------------------------------------------
def gauges(summary: dict[str, Any], now: datetime) -> str:
    """The run's results in the Prometheus text format (a fresh registry: nothing of this process leaks in)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    # metric families, not Gauge objects: with PROMETHEUS_MULTIPROC_DIR set (as in the service's container),
    # prometheus_client would back every Gauge with a file in that directory
    families: list[GaugeMetricFamily] = []

    def g(name: str, doc: str, labels: tuple[str, ...] = ()) -> _Gauge:
        fam = GaugeMetricFamily(name, doc, labels=list(labels))
        families.append(fam)
        return _Gauge(fam)

    g("credit_score_monitor_last_run_timestamp_seconds", "When the monitor last ran (Unix time)").set(
        (now - EPOCH).total_seconds())
    g("credit_score_monitor_duration_seconds", "Duration of the last monitor run").set(summary["duration_s"])
    wp = g("credit_score_monitor_window_predictions", "Predictions in the drift window", ("variant",))
    for k, v in summary["window"]["by_variant"].items():
        wp.labels(k.replace(" (shadow)", "_shadow")).set(v)
    drift = summary["drift"]
    g("credit_score_drift_evaluated", "1 when drift was evaluated (enough rows and a reference profile)").set(
        1 if drift["status"] == "ok" else 0)
    psi = g("credit_score_drift_psi", "Population stability index per feature (score: the champion's)", ("feature",))
    pv = g("credit_score_drift_p_value", "KS (numeric) or chi-square (categorical) p-value per feature",
           ("feature", "test"))
    det = g("credit_score_drift_detected", "1 when a feature drifts (PSI and p-value past their thresholds)",
            ("feature",))
    miss = g("credit_score_feature_missing_rate", "Share of missing values in the window", ("feature",))
    for d in drift["features"]:
        if d["psi"] is not None:
            psi.labels(d["feature"]).set(d["psi"])
        pv.labels(d["feature"], d["test"]).set(d["p_value"])
        det.labels(d["feature"]).set(1 if d["drifted"] else 0)
        if d["missing_rate"] is not None:
            miss.labels(d["feature"]).set(d["missing_rate"])
    sp = g("credit_score_score_psi", "PSI of the predicted probability against the version's reference",
           ("variant",))
    for variant, d in drift["scores"].items():
        if d["psi"] is not None:
            sp.labels(variant).set(d["psi"])
            if variant == "champion":
                psi.labels("score").set(d["psi"])
                det.labels("score").set(1 if d["drifted"] else 0)
    g("credit_score_drift_features_drifted", "Number of features that drift").set(len(drift["drifted"]))
    th = summary["thresholds"]
    g("credit_score_monitor_auc_floor", "Retrain policy: live ROC-AUC floor of the champion").set(th["auc_floor"])
    g("credit_score_monitor_min_outcomes", "Retrain policy: outcomes needed before the floor applies").set(
        th["min_labels"])
    g("credit_score_monitor_drift_features_threshold", "Retrain policy: drifting features that trigger").set(
        th["drift_features"])
    lm = g("credit_score_live_metric", "Live performance on predictions with outcomes", ("variant", "metric"))
    ln = g("credit_score_live_outcomes", "Predictions with outcomes in the performance window", ("variant",))
    for variant, m in summary["live"].items():
        ln.labels(variant).set(m["n"])
        for k in LIVE_METRICS:
            if math.isfinite(m[k]):
                lm.labels(variant, k).set(m[k])
    fr = g("credit_score_fairness_ratio", "Lowest / highest rate across the groups of a protected feature",
           ("feature", "metric"))
    for r in summary["fairness_ratios"]:
        if math.isfinite(r["ratio"]):
            fr.labels(r["feature"], r["metric"]).set(r["ratio"])
    ab = summary.get("abtest")
    if ab and ab.get("test"):
        g("credit_score_abtest_auc_difference", "Challenger minus champion live ROC-AUC").set(ab["test"]["difference"])
        g("credit_score_abtest_p_value", "DeLong p-value of the AUC difference").set(ab["test"]["p_value"])
    if ab:
        g("credit_score_abtest_challenger_better", "1 when the A/B verdict is challenger_better").set(
            1 if ab["verdict"] == "challenger_better" else 0)
    rt = g("credit_score_monitor_retrain_triggered", "1 when a retrain policy rule fired in the last run",
           ("reason",))
    dec = summary["retrain"]
    for reason in ("drift", "auc", "schedule"):
        rt.labels(reason).set(1 if reason in dec["reasons"] else 0)
    g("credit_score_monitor_retrain_started", "1 when the last run started a retrain job").set(
        1 if dec.get("job_id") else 0)
    job = summary.get("last_job")
    if job:
        ls = g("credit_score_retrain_last_status", "Status of the newest retrain job (value 1)", ("status",))
        for st in ("queued", "running", "succeeded", "gate_failed", "failed"):
            ls.labels(st).set(1 if job.get("status") == st else 0)
        fin = parse_time(job.get("finished_at"))
        if fin:
            g("credit_score_retrain_last_finished_timestamp_seconds", "When the newest retrain job finished").set(
                (fin - EPOCH).total_seconds())
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Families(families))
    return generate_latest(reg).decode()


class _Gauge:
    """``g.set(v)`` / ``g.labels(*values).set(v)`` onto a GaugeMetricFamily (last value per label set wins)."""

    def __init__(self, fam, values: tuple[str, ...] = ()):
        self.fam, self.values = fam, values

    def labels(self, *values: str) -> _Gauge:
        return _Gauge(self.fam, tuple(str(v) for v in values))

    def set(self, value: float) -> None:
        self.fam.samples = [smp for smp in self.fam.samples
                            if tuple(smp.labels.get(k) for k in self.fam._labelnames) != self.values]
        self.fam.add_metric(list(self.values), float(value))


class _Families:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return iter(self.families)


def write_textfile(path: Path, text: str) -> None:
    """Atomically, as node-exporter's textfile collector wants it (``*.prom``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


# ---- reports -----------------------------------------------------------------------------------------------
def write_reports(settings: Settings, summary: dict[str, Any]) -> Path:
    """``monitor.json`` and ``report.html`` under ``<reports_dir>/monitor/<time>/``; returns the HTML's path."""
    from jinja2 import Environment

    from app.monitoring.report_template import MONITOR_TEMPLATE

    out = settings.reports_dir / "monitor" / summary["time"].replace(":", "").replace("-", "")
    out.mkdir(parents=True, exist_ok=True)
    (out / "monitor.json").write_text(json.dumps(json_safe(summary), indent=2))
    html = Environment(autoescape=True).from_string(MONITOR_TEMPLATE).render(s=summary, fmt=_fmt)
    (out / "report.html").write_text(html)
    return out / "report.html"


def json_safe(o: Any) -> Any:
    """``o`` ready for strict JSON: NaN and infinities become null, numpy scalars Python numbers, tuples lists."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_safe(v) for v in o]
    if isinstance(o, (np.floating, np.integer)):
        return json_safe(o.item())
    return o


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) >= 10 ** -digits or v == 0 else f"{v:.2e}"
    return str(v)
