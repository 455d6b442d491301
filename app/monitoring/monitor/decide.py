"""Stage 3, decide: the retrain policy over the analysis, the champion's age and the retrain jobs."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any

from app.config import Settings
from app.monitoring.monitor.results import Analysis, Collected, RetrainDecision

log = logging.getLogger("credit_score.monitor")


def decide(settings: Settings, c: Collected, a: Analysis, jobs: list[dict[str, Any]]) -> RetrainDecision:
    """The policy for this run: drift of the inputs, the champion's live ROC-AUC, its age; ``jobs`` newest first."""
    return policy(settings, a.drift.drifted, a.live.get("champion"), c.models.trained_at.get(c.models.champion),
                  c.now, jobs)


def retrain_decision(settings: Settings, drifted: list[str], champion_live: dict[str, Any] | None,
                     trained_at: str | None, now: datetime, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Which policy rules fire, and whether a job should start now (cool-down, running job), as a dict."""
    return policy(settings, drifted, champion_live, trained_at, now, jobs).to_dict()


def policy(settings: Settings, drifted: list[str], champion_live: dict[str, Any] | None, trained_at: str | None,
           now: datetime, jobs: list[dict[str, Any]]) -> RetrainDecision:
    """Which policy rules fire, and whether a job should start now (cool-down, running job)."""
    reasons: dict[str, str] = {}
    if len(drifted) >= settings.retrain_drift_features:
        reasons["drift"] = f"drift on {len(drifted)} feature(s) (>= {settings.retrain_drift_features}): " \
                           + ", ".join(drifted)
    if champion_live and champion_live["n"] >= settings.retrain_min_labels and \
            math.isfinite(champion_live["roc_auc"]) and champion_live["roc_auc"] < settings.retrain_auc_floor:
        reasons["auc"] = f"live ROC-AUC {champion_live['roc_auc']:.4f} < floor {settings.retrain_auc_floor} " \
                         f"on {champion_live['n']} outcomes"
    trained = parse_time(trained_at)
    if settings.retrain_every_days > 0 and trained is not None and \
            now - trained > timedelta(days=settings.retrain_every_days):
        reasons["schedule"] = f"champion trained {trained:%Y-%m-%d}, more than {settings.retrain_every_days:g} " \
                              "days ago"
    decision = RetrainDecision(triggered=bool(reasons), reasons=reasons)
    if not reasons:
        return decision
    running = [j for j in jobs if j.get("status") in ("queued", "running")]
    recent = [j for j in jobs if str(j.get("reason", "")).startswith("monitor")
              and (t := parse_time(j.get("created_at"))) is not None
              and now - t < timedelta(hours=settings.retrain_cooldown_hours)]
    if running:
        decision.skipped = f"job {running[0]['id']} is {running[0]['status']}"
    elif recent:
        decision.skipped = f"cool-down: the monitor started job {recent[0]['id']} at {recent[0]['created_at']} " \
                           f"(< {settings.retrain_cooldown_hours:g} h ago)"
    else:
        decision.start = True
    return decision


def last_jobs(settings: Settings) -> list[dict[str, Any]]:
    """Retrain jobs, newest first (status files, or the cluster's Jobs with the Kubernetes runner)."""
    from app import jobs
    from app.jobs import JobRunnerError

    try:
        return jobs.recent(settings)
    except JobRunnerError as e:
        log.warning("retrain jobs could not be listed", extra={"error.message": str(e)})
        return []


def parse_time(s: str | None) -> datetime | None:
    """A job's or a tag's ISO time as a naive datetime (the offset dropped: ours are UTC, ``Z``); None when
    absent or unreadable."""
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None
