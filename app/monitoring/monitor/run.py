"""One monitor run: collect -> analyse -> decide -> act -> export, and the summary they add up to."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from app.config import Settings
from app.monitoring.monitor.act import act
from app.monitoring.monitor.analyse import analyse
from app.monitoring.monitor.collect import collect
from app.monitoring.monitor.decide import decide, last_jobs
from app.monitoring.monitor.export import export
from app.monitoring.monitor.results import Actions, Analysis, Collected
from app.monitoring.store import PredictionStore, redact_url, utcnow

log = logging.getLogger("credit_score.monitor")


def run_monitor(settings: Settings, *, now: datetime | None = None, dry_run: bool = False,
                textfile: Path | None = None, store: PredictionStore | None = None, registry=None,
                write_report: bool = True) -> dict[str, Any]:
    """One monitor run; returns the summary (also written to monitor.json). Raises MonitorError."""
    t0 = time.perf_counter()
    now = now or utcnow()
    collected = collect(settings, now, store, registry)
    analysis = analyse(settings, collected)
    jobs = last_jobs(settings)
    decision = decide(settings, collected, analysis, jobs)
    actions = act(settings, collected, decision, jobs, dry_run=dry_run)
    summary = summarise(settings, collected, analysis, actions)
    summary["duration_s"] = round(time.perf_counter() - t0, 3)
    report = export(settings, collected.store, summary, now, textfile=textfile, write_report=write_report)
    if report is not None:
        summary["report"] = str(report)
    log.info("monitor run finished", extra={
        "monitor.predictions": len(collected.rows), "monitor.labelled": len(collected.labelled),
        "drift.status": analysis.drift.status, "drift.features": analysis.drift.drifted,
        "retrain.triggered": actions.decision.triggered, "retrain.job_id": (actions.job or {}).get("job_id"),
        "event.duration": int((time.perf_counter() - t0) * 1e9)})
    return summary


def summarise(settings: Settings, c: Collected, a: Analysis, actions: Actions) -> dict[str, Any]:
    """The run's summary: a JSON-ready dict (monitor.json, ``--json``, the report's and the gauges' input)."""
    rows, served = c.rows, c.served
    return {
        "time": c.now.strftime("%Y-%m-%dT%H:%M:%SZ"), "model": settings.model_name,
        "champion": c.models.champion, "challenger": c.models.challenger, "store": redact_url(c.store.url),
        "window": {"hours": settings.monitor_window_hours, "predictions": len(rows), "served": len(served),
                   "by_variant": count_by_variant(rows)},
        "performance_window": {"days": settings.monitor_performance_days, "labelled": len(c.labelled)},
        "thresholds": {"psi": settings.drift_psi_threshold, "p_value": settings.drift_p_value,
                       "min_rows": settings.monitor_min_rows, "drift_features": settings.retrain_drift_features,
                       "auc_floor": settings.retrain_auc_floor, "min_labels": settings.retrain_min_labels},
        "drift": a.drift.to_dict(),
        "live": a.live,
        "fairness": a.fairness,
        "fairness_ratios": a.fairness_ratios,
        "abtest": a.abtest,
        "retrain": actions.retrain(),
        "last_job": actions.last_job,
        "retention": actions.retention,
    }


def count_by_variant(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Predictions per variant, shadow ones apart (``"challenger (shadow)"``)."""
    out: dict[str, int] = {}
    for r in rows:
        key = r["variant"] + (" (shadow)" if r["shadow"] else "")
        out[key] = out.get(key, 0) + 1
    return out
