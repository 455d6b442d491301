"""Retrain jobs: the training pipeline in a separate process, one at a time, with a status file.
(``CREDIT_SCORE_JOB_RUNNER=kubernetes``: a Kubernetes Job instead, see app/kube_jobs.py.)

``start()`` takes an exclusive ``flock`` on ``<jobs_dir>/retrain.lock`` without blocking (another job running:
:class:`JobBusy`), writes the job's status file, and starts ``python -m app.jobs <id>`` in its own session,
handing it the locked file descriptor: the lock lives exactly as long as the job process, whichever gunicorn
worker started it. The job runs ``credit-score train --json`` (the same pipeline as the CLI: validation,
grid, gate, registry) and records timings, the new version and the gate result in the status file, which any
worker can read.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from app.config import Settings

LOCK = "retrain.lock"


class JobBusy(RuntimeError):
    """A retrain job is already running."""

    def __init__(self, running: str | None):
        super().__init__(f"retrain job {running or '?'} is running")
        self.running = running


def _status_path(jobs_dir: Path, job_id: str) -> Path:
    return jobs_dir / f"{job_id}.json"


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def read_status(settings: Settings, job_id: str) -> dict[str, Any] | None:
    if not job_id.isalnum() or len(job_id) > 64:
        return None
    if settings.job_runner == "kubernetes":
        from app import kube_jobs

        return kube_jobs.read_status(settings, job_id)
    path = _status_path(settings.jobs_dir, job_id)
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def start(settings: Settings, reason: str = "api") -> dict[str, Any]:
    """Start a retrain job or raise JobBusy; returns the initial status. With the Kubernetes runner, a Job
    (app/kube_jobs.py; its errors are app.kube_jobs.KubeError)."""
    if settings.job_runner == "kubernetes":
        from app import kube_jobs

        return kube_jobs.start(settings, reason)
    jobs = settings.jobs_dir
    jobs.mkdir(parents=True, exist_ok=True)
    fd = os.open(jobs / LOCK, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            running = os.pread(fd, 64, 0).decode(errors="ignore").strip() or None
            raise JobBusy(running) from None
        job_id = uuid.uuid4().hex
        os.ftruncate(fd, 0)
        os.pwrite(fd, job_id.encode(), 0)
        status = {"id": job_id, "status": "queued", "reason": reason, "created_at": _now(),
                  "started_at": None, "finished_at": None, "duration_s": None, "version": None,
                  "alias": None, "gate": None, "error": None}
        _write(_status_path(jobs, job_id), status)
        subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
            [sys.executable, "-m", "app.jobs", job_id, str(fd)], pass_fds=(fd,), start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_job_env(settings))
        return status
    finally:
        os.close(fd)  # the child holds its own copy of the locked descriptor


def recent(settings: Settings) -> list[dict[str, Any]]:
    """Status documents of the retrain jobs on record, newest first."""
    if settings.job_runner == "kubernetes":
        from app import kube_jobs

        return kube_jobs.recent(settings)
    found = []
    for p in settings.jobs_dir.glob("*.json"):
        try:
            found.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(found, key=lambda j: j.get("created_at") or "", reverse=True)


def _job_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)  # PROMETHEUS_MULTIPROC_DIR stays: the job counts its outcome there
    env["CREDIT_SCORE_MODELS_DIR"] = str(settings.models_dir)
    env["CREDIT_SCORE_REPORTS_DIR"] = str(settings.reports_dir)
    env["CREDIT_SCORE_STATE_DIR"] = str(settings.jobs_dir)
    env["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    if settings.data:
        env["CREDIT_SCORE_DATA"] = str(settings.data)
    return env


def run(job_id: str, lock_fd: int | None = None) -> int:
    """The job process: train, record the outcome. The inherited fd (``lock_fd``) holds the lock: it is
    released just before the final status is published, so a client that reads "succeeded" can start the next
    job at once (and if this process dies early, its exit releases the lock)."""
    from app.config import get_settings

    settings = get_settings()
    path = _status_path(settings.jobs_dir, job_id)
    status = json.loads(path.read_text())
    status.update(status="running", started_at=_now())
    _write(path, status)
    cmd = [sys.executable, "-m", "app.cli", "train", "--json", "--quiet"]
    if settings.retrain_config:
        cmd += ["--config", str(settings.retrain_config)]
    cmd += ["--promote", settings.retrain_promote]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=settings.retrain_timeout)  # noqa: S603
        result = _parse(proc.stdout)
        status.update(exit_code=proc.returncode)
        if result is not None:
            status.update(version=result.get("version"), alias=result.get("alias"), gate=result.get("gate"),
                          selected=result.get("selected"), holdout=result.get("holdout"))
        if proc.returncode == 0:
            status["status"] = "succeeded"
        elif proc.returncode == 3:
            status["status"] = "gate_failed"
        else:
            status["status"] = "failed"
            status["error"] = _last_line(proc.stderr)
    except subprocess.TimeoutExpired:
        status.update(status="failed", error=f"timed out after {settings.retrain_timeout} s")
    status.update(finished_at=_now(), duration_s=round(time.perf_counter() - t0, 3))
    from app.monitoring.metrics import metrics

    # count, release the lock, then publish the final status: a reader that sees it finds the lock free.
    # Best effort: a metrics problem (e.g. PROMETHEUS_MULTIPROC_DIR missing) must not lose the job's status.
    with contextlib.suppress(Exception):
        metrics().retrains.labels(outcome=status["status"]).inc()
    if lock_fd is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            os.close(lock_fd)
    _write(path, status)
    return 0


def _parse(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return None


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:500] if lines else "training failed without a message"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None))
