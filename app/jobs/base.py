"""What every retrain job runner shares: the status document, the errors, and the runner protocol.

A runner starts one retrain job at a time and reports on it with :class:`JobStatus`, whichever way the job runs
(a local process, app/jobs/process.py; a Kubernetes Job, app/jobs/kubernetes.py). The status is also the JSON
document ``GET /model/retrain/<id>`` returns and the process runner keeps on disk (:meth:`JobStatus.to_dict`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from app.exit_codes import ExitCode
from app.jobs.summary import TrainSummary

UNFINISHED = ("queued", "running")  # the other states: succeeded, gate_failed, failed
# in every document, even when empty (None); the other fields only once they are known
ALWAYS = ("id", "status", "reason", "created_at", "started_at", "finished_at", "duration_s", "version", "alias",
          "gate", "error", "runner")


class JobBusy(RuntimeError):
    """A retrain job is already running (``running``: its id, when known)."""

    def __init__(self, running: str | None):
        super().__init__(f"retrain job {running or '?'} is running")
        self.running = running


class JobRunnerError(RuntimeError):
    """The job runner cannot be used right now (e.g. the Kubernetes API is unreachable); retry later."""


@dataclass
class JobStatus:
    id: str
    status: str = "queued"  # queued | running | succeeded | gate_failed | failed
    reason: str | None = None
    created_at: str | None = None  # ISO 8601, UTC
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    version: str | None = None  # the registered version, from the training summary
    alias: str | None = None
    gate: dict[str, Any] | None = None
    error: str | None = None
    runner: str = "process"  # process | kubernetes
    exit_code: int | None = None  # the training command's (process runner)
    selected: dict[str, Any] | None = None
    holdout: dict[str, Any] | None = None
    kubernetes_job: str | None = None  # the Job's name (Kubernetes runner)
    pid: int | None = None  # the job process, leader of its own process group (process runner)
    started_by: int | None = None  # pid of the process that started it (process runner)

    @property
    def unfinished(self) -> bool:
        return self.status in UNFINISHED

    def record(self, summary: TrainSummary) -> None:
        """Take the version, alias, gate result, selection and holdout metrics from the training summary."""
        self.version, self.alias, self.gate = summary.version, summary.alias, summary.gate
        self.selected, self.holdout = summary.selected, summary.holdout

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k in ALWAYS or v is not None}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> JobStatus:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


def outcome_of_exit(code: int) -> str:
    """The final status for the training command's exit code."""
    if code == ExitCode.OK:
        return "succeeded"
    return "gate_failed" if code == ExitCode.GATE else "failed"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class JobRunner(Protocol):
    """Where retrain jobs run. One job at a time per runner's scope (a jobs directory, a namespace)."""

    def start(self, reason: str) -> JobStatus:
        """Start a retrain job and return its first status; :class:`JobBusy` when one is running,
        :class:`JobRunnerError` when the runner cannot be reached."""
        ...

    def read_status(self, job_id: str) -> JobStatus | None:
        """The job's status, or None for an unknown id."""
        ...

    def recent(self) -> list[JobStatus]:
        """The jobs on record, newest first."""
        ...
