"""Stage 4, act: start the retrain job the policy asks for (not in a dry run), and enforce retention."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from app.config import Settings
from app.monitoring.monitor.decide import last_jobs
from app.monitoring.monitor.results import Actions, Collected, RetrainDecision

log = logging.getLogger("credit_score.monitor")
JOB_FIELDS = ("id", "status", "reason", "created_at", "finished_at", "version", "error")


def act(settings: Settings, c: Collected, decision: RetrainDecision, jobs: list[dict[str, Any]],
        dry_run: bool = False) -> Actions:
    """Carry the decision out; ``jobs`` are the retrain jobs the decision saw (newest first)."""
    job = None
    if decision.start and not dry_run:
        decision, job = start_retrain(settings, decision, store_url=getattr(c.store, "url", None))
        jobs = last_jobs(settings)
    elif decision.triggered:
        log.info("retrain policy triggered; no job started",
                 extra={"retrain.reasons": list(decision.reasons), "retrain.skipped": decision.skipped or
                        ("dry run" if dry_run else None)})
    last_job = {k: jobs[0].get(k) for k in JOB_FIELDS} if jobs else None
    return Actions(decision=decision, dry_run=dry_run, job=job, last_job=last_job,
                   retention={"days": settings.retention_days, "deleted": purge(settings, c)})


def start_retrain(settings: Settings, decision: RetrainDecision, store_url: str | None = None
                  ) -> tuple[RetrainDecision, dict[str, Any] | None]:
    """Start a retrain job through the runner of ``POST /model/retrain``: the decision (``start`` off and
    ``skipped`` set when the runner refused) and the started job's ``job_id`` and ``started_at``. The job
    learns from ``store_url``, the store this run read (None: the configured one)."""
    from app import jobs
    from app.jobs import JobRunnerError

    reason = "monitor: " + "; ".join(decision.reasons.values())
    try:
        status = jobs.start(settings, reason=reason[:200], store_url=store_url)
    except jobs.JobBusy as e:
        log.warning("retrain triggered but a job is already running", extra={"retrain.running": e.running})
        return replace(decision, start=False, skipped=f"job {e.running} is running"), None
    except JobRunnerError as e:
        log.error("retrain triggered but no job could be started", extra={"error.message": str(e)})
        return replace(decision, start=False, skipped=f"the job runner failed: {e}"), None
    log.warning("retrain triggered", extra={"retrain.job_id": status["id"], "retrain.reasons": list(decision.reasons),
                                            "retrain.reason": reason})
    return decision, {"job_id": status["id"], "started_at": status["created_at"]}


def purge(settings: Settings, c: Collected) -> dict[str, int] | None:
    """Delete what is older than ``retention_days``; None when that failed (the next run retries)."""
    try:
        return c.store.purge(c.now - timedelta(days=settings.retention_days))
    except Exception as e:  # noqa: BLE001 (retention is retried at the next run)
        log.warning("retention purge failed", extra={"error.type": type(e).__name__})
        return None
