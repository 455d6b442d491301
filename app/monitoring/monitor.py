"""The monitor job (``credit-score monitor``; a cron job / Kubernetes CronJob, hourly).

One run:
1. reads the predictions of the last ``monitor_window_hours`` from the prediction store and compares the served
   requests' features with the champion's reference profile (PSI, KS for numbers, chi-square for categories,
   missing rates), and each variant's scores with its own version's profile;
2. reads the predictions of the last ``monitor_performance_days`` that have outcomes (``/feedback``) and computes
   live ROC-AUC, F1 macro, precision/recall of the bad class, Brier score and calibration (ECE and a reliability
   table) per variant, the fairness table (approval rate, TPR, FPR per protected group, ratios between groups)
   and the A/B comparison (app/monitoring/abtest.py);
3. applies the retrain policy: drift on at least ``retrain_drift_features`` features, or the champion's live
   ROC-AUC below ``retrain_auc_floor`` (on at least ``retrain_min_labels`` outcomes), or a champion older than
   ``retrain_every_days`` -> a retrain job through the same runner as ``POST /model/retrain`` (app/jobs/),
   unless one is running or the monitor started one within ``retrain_cooldown_hours``;
4. enforces retention (``retention_days``) on the store;
5. exports the results as Prometheus gauges: stored in the ``monitor_runs`` table (the service appends the latest
   run's gauges to its own /metrics, so Prometheus scrapes them with the service: no Pushgateway needed) and, when
   ``monitor_textfile`` is set, written for node-exporter's textfile collector; and writes ``monitor.json`` and
   ``report.html`` under ``<reports_dir>/monitor/<time>/``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from app.config import Settings
from app.monitoring.drift import drift_report
from app.monitoring.fairness import add_relative_approval, fairness_ratios, fairness_table
from app.monitoring.store import PredictionStore, redact_url, utcnow

log = logging.getLogger("credit_score.monitor")
LIVE_METRICS = ("roc_auc", "f1_macro", "accuracy", "precision_bad", "recall_bad", "brier", "ece")


class MonitorError(RuntimeError):
    """The monitor cannot run (store disabled or unreachable, no champion)."""


@dataclass
class Models:
    """What the monitor needs to know of the registered models."""

    champion: str | None
    challenger: str | None
    schema: Any  # the champion's DatasetSchema
    profiles: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # version -> reference profile
    trained_at: dict[str, str] = field(default_factory=dict)


def load_models(settings: Settings, registry=None) -> Models:
    from app.registry import CHALLENGER, CHAMPION, Registry

    reg = registry or Registry(settings)
    champion, challenger = reg.alias_version(CHAMPION), reg.alias_version(CHALLENGER)
    if champion is None:
        raise MonitorError(f"no champion registered for {settings.model_name}; nothing to monitor")
    models = Models(champion=champion, challenger=challenger, schema=None)
    for version in (champion, challenger):
        if version is None:
            continue
        info, bundle = reg.load(version)
        if version == champion:
            models.schema = bundle.schema
        models.profiles[version] = bundle.reference_profile
        models.trained_at[version] = info.tags.get("trained_at") or bundle.meta.get("trained_at") or ""
    return models


# ---- rows -> arrays ----------------------------------------------------------------------------------------
def feature_matrix(rows: list[dict[str, Any]], names: list[str]) -> np.ndarray:
    X = np.full((len(rows), len(names)), np.nan)  # noqa: N806
    for i, r in enumerate(rows):
        if r["features"]:
            d = json.loads(r["features"])
            X[i] = [np.nan if d.get(n) is None else d[n] for n in names]
    return X


def live_metrics(rows: list[dict[str, Any]], classes: list[str], bad: str, bins: int = 10) -> dict[str, Any]:
    """Live performance of labelled rows: AUC, F1 macro, precision/recall (bad), accuracy, Brier, calibration."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support, roc_auc_score

    rows = [r for r in rows if r["outcome"] in classes and r["predicted_class"] in classes]
    n = len(rows)
    out: dict[str, Any] = {"n": n, "bad": 0, **{m: float("nan") for m in LIVE_METRICS}, "calibration": []}
    if not n:
        return out
    idx = {c: i for i, c in enumerate(classes)}
    y = np.array([idx[r["outcome"]] for r in rows])
    pred = np.array([idx[r["predicted_class"]] for r in rows])
    p_bad = np.array([r["probability"] for r in rows], dtype=float)
    b = idx[bad]
    y_bad = (y == b).astype(int)
    out["bad"] = int(y_bad.sum())
    labels = list(range(len(classes)))
    out["f1_macro"] = float(f1_score(y, pred, average="macro", labels=labels, zero_division=0))
    out["accuracy"] = float((y == pred).mean())
    prec, rec, _, _ = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    out["precision_bad"], out["recall_bad"] = float(prec[b]), float(rec[b])
    if 0 < y_bad.sum() < n:
        if len(classes) == 2:
            out["roc_auc"] = float(roc_auc_score(y_bad, p_bad))
        else:
            proba = np.array([json.loads(r["probabilities"]) for r in rows], dtype=float)
            present = np.unique(y)
            out["roc_auc"] = float(roc_auc_score(y, proba, multi_class="ovr", labels=labels)) \
                if present.size == len(classes) else float(roc_auc_score(y_bad, p_bad))
    out["brier"] = float(np.mean((p_bad - y_bad) ** 2))
    # calibration: quantile bins of P(bad); ECE = sum over bins of share * |mean predicted - observed|
    order = np.argsort(p_bad, kind="stable")
    ece, table = 0.0, []
    for chunk in np.array_split(order, min(bins, n)):
        if chunk.size == 0:
            continue
        mp, ob = float(p_bad[chunk].mean()), float(y_bad[chunk].mean())
        ece += chunk.size / n * abs(mp - ob)
        table.append({"rows": int(chunk.size), "mean_predicted": mp, "observed": ob,
                      "min": float(p_bad[chunk].min()), "max": float(p_bad[chunk].max())})
    out["ece"], out["calibration"] = float(ece), table
    return out


# ---- retrain policy ----------------------------------------------------------------------------------------
def last_jobs(settings: Settings) -> list[dict[str, Any]]:
    """Retrain jobs, newest first (status files, or the cluster's Jobs with the Kubernetes runner)."""
    from app import jobs
    from app.jobs import JobRunnerError

    try:
        return jobs.recent(settings)
    except JobRunnerError as e:
        log.warning("retrain jobs could not be listed", extra={"error.message": str(e)})
        return []


def _parse_time(s: str | None) -> datetime | None:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


def retrain_decision(settings: Settings, drifted: list[str], champion_live: dict[str, Any] | None,
                     trained_at: str | None, now: datetime, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Which policy rules fire, and whether a job should start now (cool-down, running job)."""
    reasons: dict[str, str] = {}
    if len(drifted) >= settings.retrain_drift_features:
        reasons["drift"] = f"drift on {len(drifted)} feature(s) (>= {settings.retrain_drift_features}): " \
                           + ", ".join(drifted)
    if champion_live and champion_live["n"] >= settings.retrain_min_labels and \
            math.isfinite(champion_live["roc_auc"]) and champion_live["roc_auc"] < settings.retrain_auc_floor:
        reasons["auc"] = f"live ROC-AUC {champion_live['roc_auc']:.4f} < floor {settings.retrain_auc_floor} " \
                         f"on {champion_live['n']} outcomes"
    trained = _parse_time(trained_at)
    if settings.retrain_every_days > 0 and trained is not None and \
            now - trained > timedelta(days=settings.retrain_every_days):
        reasons["schedule"] = f"champion trained {trained:%Y-%m-%d}, more than {settings.retrain_every_days:g} " \
                              "days ago"
    decision: dict[str, Any] = {"triggered": bool(reasons), "reasons": reasons, "start": False, "skipped": None}
    if not reasons:
        return decision
    running = [j for j in jobs if j.get("status") in ("queued", "running")]
    recent = [j for j in jobs if str(j.get("reason", "")).startswith("monitor")
              and (t := _parse_time(j.get("created_at"))) is not None
              and now - t < timedelta(hours=settings.retrain_cooldown_hours)]
    if running:
        decision["skipped"] = f"job {running[0]['id']} is {running[0]['status']}"
    elif recent:
        decision["skipped"] = f"cool-down: the monitor started job {recent[0]['id']} at {recent[0]['created_at']} " \
                              f"(< {settings.retrain_cooldown_hours:g} h ago)"
    else:
        decision["start"] = True
    return decision


# ---- the run -----------------------------------------------------------------------------------------------
def run_monitor(settings: Settings, *, now: datetime | None = None, dry_run: bool = False,
                textfile: Path | None = None, store: PredictionStore | None = None, registry=None,
                write_report: bool = True) -> dict[str, Any]:
    """One monitor run; returns the summary (also written to monitor.json). Raises MonitorError."""
    from app.monitoring.abtest import ab_report

    t0 = time.perf_counter()
    now = now or utcnow()
    url = settings.prediction_store_url
    if store is None:
        if url is None:
            raise MonitorError("the prediction store is disabled (CREDIT_SCORE_STORE_URL=none): nothing to monitor")
        store = PredictionStore(url)
    models = load_models(settings, registry)
    schema = models.schema
    names = schema.feature_names
    classes = [str(c) for c in schema.classes]
    bad = str(schema.target.bad_class)
    window = timedelta(hours=settings.monitor_window_hours)
    try:
        rows = store.read_predictions(now - window, now + timedelta(seconds=1), limit=settings.monitor_max_rows)
        labelled = store.read_predictions(now - timedelta(days=settings.monitor_performance_days),
                                          now + timedelta(seconds=1), labelled_only=True,
                                          limit=settings.monitor_max_rows)
    except Exception as e:
        raise MonitorError(f"prediction store {redact_url(store.url)} is unavailable: {type(e).__name__}: "
                           f"{str(getattr(e, 'orig', e)).splitlines()[0][:300]}") from e
    served = [r for r in rows if not r["shadow"]]
    summary: dict[str, Any] = {
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "model": settings.model_name,
        "champion": models.champion, "challenger": models.challenger, "store": redact_url(store.url),
        "window": {"hours": settings.monitor_window_hours, "predictions": len(rows), "served": len(served),
                   "by_variant": _count(rows)},
        "performance_window": {"days": settings.monitor_performance_days, "labelled": len(labelled)},
        "thresholds": {"psi": settings.drift_psi_threshold, "p_value": settings.drift_p_value,
                       "min_rows": settings.monitor_min_rows, "drift_features": settings.retrain_drift_features,
                       "auc_floor": settings.retrain_auc_floor, "min_labels": settings.retrain_min_labels},
    }

    # drift of the served inputs against the champion's training data; scores per variant against their own
    profile = models.profiles.get(models.champion)
    X = feature_matrix(served, names)  # noqa: N806
    drift: dict[str, Any] = {"status": "ok", "features": [], "drifted": [], "scores": {}}
    if profile is None:
        drift["status"] = "no_reference_profile"
    elif len(served) < settings.monitor_min_rows:
        drift["status"] = "insufficient_data"
    else:
        rep = drift_report(profile, X, names, None, settings.drift_psi_threshold, settings.drift_p_value)
        drift["features"] = [d.to_dict() for d in rep["features"]]
        drift["drifted"] = rep["drifted"]
    for variant, version in (("champion", models.champion), ("challenger", models.challenger)):
        prof = models.profiles.get(version) if version else None
        scores = np.array([r["probability"] for r in rows if r["variant"] == variant and r["model_version"] == version])
        if prof and prof.get("score") and len(scores) >= settings.monitor_min_rows:
            sd = drift_report(prof, np.empty((len(scores), 0)), [], scores, settings.drift_psi_threshold,
                              settings.drift_p_value)["score"]
            drift["scores"][variant] = sd.to_dict()
    summary["drift"] = drift

    # live performance per variant (current versions), calibration, fairness, A/B
    live: dict[str, Any] = {}
    for variant, version in (("champion", models.champion), ("challenger", models.challenger)):
        if version is None:
            continue
        mine = [r for r in labelled if r["variant"] == variant and r["model_version"] == version
                and (variant == "challenger" or not r["shadow"])]
        live[variant] = {"version": version, **live_metrics(mine, classes, bad)}
    summary["live"] = live
    summary["fairness"] = _fairness(schema, served, [r for r in labelled if not r["shadow"]], names, bad)
    summary["fairness_ratios"] = fairness_ratios(summary["fairness"])
    ab = ab_report(store, models.champion, models.challenger, bad, settings.abtest_min_samples,
                   settings.abtest_min_positives, settings.abtest_alpha, settings.monitor_performance_days, now,
                   settings.monitor_max_rows) if models.challenger else None
    summary["abtest"] = ab

    # retrain policy
    jobs = last_jobs(settings)
    decision = retrain_decision(settings, drift["drifted"], live.get("champion"),
                                models.trained_at.get(models.champion), now, jobs)
    decision["dry_run"] = dry_run
    if decision["start"] and not dry_run:
        decision.update(_start_retrain(settings, decision["reasons"]))
        jobs = last_jobs(settings)
    elif decision["triggered"]:
        log.info("retrain policy triggered; no job started",
                 extra={"retrain.reasons": list(decision["reasons"]), "retrain.skipped": decision["skipped"] or
                        ("dry run" if dry_run else None)})
    summary["retrain"] = decision
    summary["last_job"] = {k: jobs[0].get(k) for k in ("id", "status", "reason", "created_at", "finished_at",
                                                        "version", "error")} if jobs else None

    # retention
    try:
        purged = store.purge(now - timedelta(days=settings.retention_days))
    except Exception as e:  # noqa: BLE001 (retention is retried at the next run)
        log.warning("retention purge failed", extra={"error.type": type(e).__name__})
        purged = None
    summary["retention"] = {"days": settings.retention_days, "deleted": purged}
    summary["duration_s"] = round(time.perf_counter() - t0, 3)

    exposition = gauges(summary, now)
    store.save_monitor_run(exposition, _brief(summary), now)
    path = textfile or settings.monitor_textfile
    if path:
        write_textfile(Path(path), exposition)
    if write_report:
        summary["report"] = str(write_reports(settings, summary))
    log.info("monitor run finished", extra={
        "monitor.predictions": len(rows), "monitor.labelled": len(labelled), "drift.status": drift["status"],
        "drift.features": drift["drifted"], "retrain.triggered": decision["triggered"],
        "retrain.job_id": decision.get("job_id"), "event.duration": int((time.perf_counter() - t0) * 1e9)})
    return summary


def _count(rows: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        key = r["variant"] + (" (shadow)" if r["shadow"] else "")
        out[key] = out.get(key, 0) + 1
    return out


def _fairness(schema, served: list[dict[str, Any]], labelled: list[dict[str, Any]], names: list[str],
              bad: str) -> list[dict[str, Any]]:
    """Approval rate per group on the window's served requests; TPR/FPR on the outcomes known."""
    approvals = fairness_table(schema, feature_matrix(served, names),
                               None, np.array([r["predicted_class"] == bad for r in served], dtype=bool)) \
        if served else []
    rates = fairness_table(schema, feature_matrix(labelled, names),
                           np.array([r["outcome"] == bad for r in labelled], dtype=bool),
                           np.array([r["predicted_class"] == bad for r in labelled], dtype=bool)) if labelled else []
    by_key = {(r["feature"], r["group"]): r for r in approvals}
    for r in rates:
        key = (r["feature"], r["group"])
        if key in by_key:
            by_key[key].update(labelled=r["labelled"], tpr=r["tpr"], fpr=r["fpr"])
        else:
            by_key[key] = {**r, "rows": 0, "approval_rate": float("nan")}
    out = list(by_key.values())
    add_relative_approval(out)
    return out


def _start_retrain(settings: Settings, reasons: dict[str, str]) -> dict[str, Any]:
    from app import jobs
    from app.jobs import JobRunnerError

    reason = "monitor: " + "; ".join(reasons.values())
    try:
        status = jobs.start(settings, reason=reason[:200])
    except jobs.JobBusy as e:
        log.warning("retrain triggered but a job is already running", extra={"retrain.running": e.running})
        return {"start": False, "skipped": f"job {e.running} is running"}
    except JobRunnerError as e:
        log.error("retrain triggered but no job could be started", extra={"error.message": str(e)})
        return {"start": False, "skipped": f"the job runner failed: {e}"}
    log.warning("retrain triggered", extra={"retrain.job_id": status["id"], "retrain.reasons": list(reasons),
                                            "retrain.reason": reason})
    return {"job_id": status["id"], "started_at": status["created_at"]}


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    keep = ("time", "champion", "challenger", "window", "retrain", "duration_s")
    out = {k: summary.get(k) for k in keep}
    out["drifted"] = summary["drift"]["drifted"]
    out["drift_status"] = summary["drift"]["status"]
    out["verdict"] = (summary.get("abtest") or {}).get("verdict")
    return out


# ---- outputs -----------------------------------------------------------------------------------------------
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
        (now - datetime(1970, 1, 1)).total_seconds())
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
        fin = _parse_time(job.get("finished_at"))
        if fin:
            g("credit_score_retrain_last_finished_timestamp_seconds", "When the newest retrain job finished").set(
                (fin - datetime(1970, 1, 1)).total_seconds())
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


def write_reports(settings: Settings, summary: dict[str, Any]) -> Path:
    from jinja2 import Environment

    out = settings.reports_dir / "monitor" / summary["time"].replace(":", "").replace("-", "")
    out.mkdir(parents=True, exist_ok=True)
    (out / "monitor.json").write_text(json.dumps(_plain(summary), indent=2))
    from app.monitoring.report_template import MONITOR_TEMPLATE

    html = Environment(autoescape=True).from_string(MONITOR_TEMPLATE).render(s=summary, fmt=_fmt)
    (out / "report.html").write_text(html)
    return out / "report.html"


def _plain(o: Any) -> Any:
    """JSON without NaN/Infinity (null instead)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    if isinstance(o, (np.floating, np.integer)):
        return _plain(o.item())
    return o


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) >= 10 ** -digits or v == 0 else f"{v:.2e}"
    return str(v)
