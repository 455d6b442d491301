"""Retrain jobs behind one interface: a :class:`~app.jobs.base.JobRunner` runs the training pipeline one job at
a time and reports a :class:`~app.jobs.base.JobStatus`.

``CREDIT_SCORE_JOB_RUNNER`` picks the runner: ``process`` (default; a process on this machine with a status file,
app/jobs/process.py) or ``kubernetes`` (a Job from the training CronJob's template, app/jobs/kubernetes.py). Both
read the training run's summary with one parser (app/jobs/summary.py) and its exit code with one enum
(app/exit_codes.py).

The functions below are what the API (``POST /model/retrain``) and the monitor call; they return the status as
its JSON document. Errors: :class:`JobBusy` (a job is running: 409), :class:`JobRunnerError` (the runner cannot
be reached, e.g. the Kubernetes API: 503). This package imports only app.config and app.exit_codes: whoever
wants to observe a job's outcome (the Prometheus counter) hands an observer to the job process
(app/retrain_job.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.config import Settings
from app.jobs.base import UNFINISHED, JobBusy, JobRunner, JobRunnerError, JobStatus, outcome_of_exit
from app.jobs.kubernetes import KubeError, KubernetesRunner
from app.jobs.process import ProcessRunner
from app.jobs.summary import TrainSummary, parse_train_summary

__all__ = ["UNFINISHED", "JobBusy", "JobRunner", "JobRunnerError", "JobStatus", "KubeError", "KubernetesRunner",
           "ProcessRunner", "TrainSummary", "outcome_of_exit", "parse_train_summary", "read_status", "recent",
           "runner", "start", "stop_jobs_started_by"]


def runner(settings: Settings) -> JobRunner:
    """The runner ``settings.job_runner`` names."""
    if settings.job_runner == "kubernetes":
        return KubernetesRunner(settings)
    return ProcessRunner(settings)


def start(settings: Settings, reason: str = "api", store_url: str | None = None) -> dict[str, Any]:
    """Start a retrain job; its first status. :class:`JobBusy` when one is running, :class:`JobRunnerError`
    when the runner cannot be reached. ``store_url``: the prediction store the caller uses (the process runner
    hands it to the job, which trains on its labelled rows; a Kubernetes Job gets it from its template)."""
    r = runner(settings)
    if isinstance(r, ProcessRunner):
        return r.start(reason, store_url=store_url).to_dict()
    return r.start(reason).to_dict()


def read_status(settings: Settings, job_id: str) -> dict[str, Any] | None:
    """A job's status, or None for an unknown (or malformed) id."""
    if not job_id.isalnum() or len(job_id) > 64:
        return None
    status = runner(settings).read_status(job_id)
    return status.to_dict() if status else None


def recent(settings: Settings) -> list[dict[str, Any]]:
    """Status documents of the retrain jobs on record, newest first."""
    return [s.to_dict() for s in runner(settings).recent()]


def stop_jobs_started_by(settings: Settings, pids: Iterable[int]) -> list[str]:
    """Stop the process runner's running job if one of ``pids`` started it (a server's workers, when the server
    shuts down); the ids stopped. Kubernetes Jobs are the cluster's: they run on."""
    if settings.job_runner != "process":
        return []
    return ProcessRunner(settings).stop_started_by(pids)
