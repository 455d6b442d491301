"""The process runner (``CREDIT_SCORE_JOB_RUNNER=process``, the default): a retrain job is the training command
in a separate process on this machine, one at a time, with a status file.

:meth:`ProcessRunner.start` takes an exclusive ``flock`` on ``<jobs_dir>/retrain.lock`` without blocking (another
job running: :class:`~app.jobs.base.JobBusy`), writes the job's status file, and starts the job program
(``python -m app.retrain_job <id> <fd>``, which calls :func:`run_job`) in its own session, handing it the locked
file descriptor: the lock lives exactly as long as the job process, whichever gunicorn worker started it. The
job waits until its status file names its pid, then runs ``credit-score train --json`` (the same pipeline as the
CLI: validation, grid, gate, registry) and records timings, the new version and the gate result in the status
file, which any worker can read.

The job's environment is an allow-list of the service's (``settings.job_env_allow``, :func:`job_env`): the
service's Vault token, admin and feedback tokens and other secrets stay behind. The one credential it gets is
the prediction store's URL, as ``CREDIT_SCORE_STORE_URL``: the job trains on the labelled production rows in it.
A job whose process is gone
without having published its outcome (SIGKILL, the OOM killer) is recorded as ``failed`` the next time its status
is read, and the rest of its process group is killed; it never stays ``running``.

:meth:`ProcessRunner.stop` ends a running job's process group (SIGTERM; the job records itself as failed and
releases the lock); the service stops the jobs its workers started when it shuts down (gunicorn's ``on_exit``,
app/serving/gunicorn_conf.py), so no job outlives the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from app.config import Settings, get_settings
from app.jobs.base import JobBusy, JobStatus, outcome_of_exit, utc_now
from app.jobs.summary import parse_train_summary

LOCK = "retrain.lock"
# the job process's program: it lives above this package (like the CLI) and hands run_job its outcome observer
# (the Prometheus counter), so that app.jobs depends on no monitoring code
JOB_PROGRAM = "app.retrain_job"


class JobStopped(Exception):  # noqa: N818 (an event, not an error)
    """The job process received SIGTERM (ProcessRunner.stop, the service shutting down)."""


def _write(path: Path, status: JobStatus) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status.to_dict(), indent=2))
    tmp.replace(path)


class ProcessRunner:
    def __init__(self, settings: Settings, program: str = JOB_PROGRAM):
        self.settings = settings
        self.dir = settings.jobs_dir
        self.program = program

    def _path(self, job_id: str) -> Path:
        return self.dir / f"{job_id}.json"

    def start(self, reason: str, store_url: str | None = None) -> JobStatus:
        """``store_url``: the prediction store the service uses (resolved, e.g. from Vault), which the job
        reads its labelled production rows from; None: the settings' (``settings.prediction_store_url``)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                running = os.pread(fd, 64, 0).decode(errors="ignore").strip() or None
                raise JobBusy(running) from None
            job_id = uuid.uuid4().hex
            os.ftruncate(fd, 0)
            os.pwrite(fd, job_id.encode(), 0)
            status = JobStatus(id=job_id, reason=reason, created_at=utc_now(), started_by=os.getpid())
            path = self._path(job_id)
            _write(path, status)
            proc = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
                [sys.executable, "-m", self.program, job_id, str(fd)], pass_fds=(fd,), start_new_session=True,
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=job_env(self.settings, store_url=store_url))
            status.pid = proc.pid
            _write(path, status)
            proc.stdin.close()  # the go: the job reads its status file (with its pid) only after this
            return status
        finally:
            os.close(fd)  # the child holds its own copy of the locked descriptor

    def _load(self, job_id: str) -> JobStatus | None:
        try:
            return JobStatus.from_dict(json.loads(self._path(job_id).read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def read_status(self, job_id: str) -> JobStatus | None:
        status = self._load(job_id)
        return self._settle(status) if status is not None else None

    def recent(self) -> list[JobStatus]:
        found = []
        for p in self.dir.glob("*.json"):
            try:
                found.append(self._settle(JobStatus.from_dict(json.loads(p.read_text()))))
            except (OSError, json.JSONDecodeError, TypeError):
                continue
        return sorted(found, key=lambda j: j.created_at or "", reverse=True)

    def _settle(self, status: JobStatus) -> JobStatus:
        """An unfinished job whose process is gone (killed: SIGKILL, the OOM killer, a reboot) is recorded as
        failed, and what is left of its process group (the training command) is killed. The job publishes its
        final status before it exits, so a dead job process with an unfinished status never finishes."""
        if not status.unfinished or status.pid is None or _job_process_alive(status.pid, status.id):
            return status
        # gone: unless it published its outcome meanwhile, and only once it no longer holds the lock
        latest = self._load(status.id) or status
        if not latest.unfinished or self.running() == status.id:
            return latest
        if not Path(f"/proc/{status.pid}").exists() or _zombie(status.pid):
            _signal_group(status.pid, signal.SIGKILL)  # its own group (session leader): the orphaned training
        latest.status, latest.finished_at = "failed", utc_now()
        latest.error = "the job process ended without recording an outcome (killed?)"
        _write(self._path(status.id), latest)
        return latest

    def running(self) -> str | None:
        """The id of the job holding the lock, or None when no job runs. (It takes a shared lock for an instant:
        a start() at that very instant answers busy. Only stopping asks, at shutdown.)"""
        try:
            fd = os.open(self.dir / LOCK, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 64, 0).decode(errors="ignore").strip() or None
        finally:
            os.close(fd)  # releases our shared lock, if we got it
        return None

    def stop(self, job_id: str, timeout: float = 10.0) -> bool:
        """End the job's process group if that job is the one running (it holds the lock, so its pid cannot
        have been reused): SIGTERM, SIGKILL after ``timeout`` s; once the lock is free, a job that died before
        recording its outcome is recorded as failed. True when the job was running."""
        status = self.read_status(job_id)
        if status is None or status.pid is None or self.running() != job_id:
            return False
        _signal_group(status.pid, signal.SIGTERM)
        if not _wait_for(lambda: self.running() != job_id, timeout):
            _signal_group(status.pid, signal.SIGKILL)
            _wait_for(lambda: self.running() != job_id, 5.0)
        # the job publishes its final status just after releasing the lock; one killed early never does
        if not _wait_for(lambda: not self._load(job_id).unfinished, 1.0):
            status = self._load(job_id)
            status.status, status.finished_at = "failed", utc_now()
            status.error = "stopped before it recorded an outcome (the service shut down or the job was cancelled)"
            _write(self._path(job_id), status)
        return True

    def stop_started_by(self, pids: Iterable[int]) -> list[str]:
        """Stop the running job if one of ``pids`` started it (a service's workers); the ids stopped."""
        job_id, starters = self.running(), set(pids)
        status = self.read_status(job_id) if job_id else None
        if status is None or status.started_by not in starters or not self.stop(status.id):
            return []
        return [status.id]


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def _job_process_alive(pid: int, job_id: str) -> bool:
    """Whether ``pid`` is still this job's process (not gone, not a zombie, not a reused pid)."""
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():  # no procfs: the pid alone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return proc.exists()
    if _zombie(pid):
        return False
    # an empty command line: a process between fork and exec; another one: the pid was reused
    return not cmdline or job_id.encode() in cmdline.split(b"\0")


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def job_env(settings: Settings, environ: dict[str, str] | None = None, store_url: str | None = None
            ) -> dict[str, str]:
    """The job's environment: the variables of ``environ`` (the service's) that ``settings.job_env_allow``
    names (an entry ending in ``*`` is a prefix), plus where the job keeps its state and the prediction store it
    learns from: ``CREDIT_SCORE_STORE_URL`` = ``store_url`` (the service's resolved store, e.g. its database URL
    from Vault), else ``settings.prediction_store_url`` (``none`` when the store is disabled). Other secrets the
    service holds (a Vault token, the admin and feedback tokens, Vault login material) stay behind unless
    allow-listed; the database URL's own variable too (the job gets the URL once, under the store's name)."""
    names = {a for a in settings.job_env_allow if not a.endswith("*")}
    prefixes = tuple(a[:-1] for a in settings.job_env_allow if a.endswith("*"))
    env = {k: v for k, v in (os.environ if environ is None else environ).items()
           if k in names or (prefixes and k.startswith(prefixes))}
    env["CREDIT_SCORE_MODELS_DIR"] = str(settings.models_dir)
    env["CREDIT_SCORE_REPORTS_DIR"] = str(settings.reports_dir)
    env["CREDIT_SCORE_STATE_DIR"] = str(settings.jobs_dir)
    env["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    if settings.data:
        env["CREDIT_SCORE_DATA"] = str(settings.data)
    env["CREDIT_SCORE_STORE_URL"] = store_url or settings.prediction_store_url or "none"
    return env


def train_command(settings: Settings) -> list[str]:
    cmd = [sys.executable, "-m", "app.cli", "train", "--json", "--quiet"]
    if settings.retrain_config:
        cmd += ["--config", str(settings.retrain_config)]
    return [*cmd, "--promote", settings.retrain_promote]


def _stopped(signum: int, frame: object) -> None:  # noqa: ARG001 (signal handler signature)
    raise JobStopped(f"stopped by signal {signal.Signals(signum).name} before it finished (the service shut down"
                     " or the job was cancelled)")


def run_job(job_id: str, lock_fd: int | None = None, on_finished: Callable[[JobStatus], None] | None = None,
            command: list[str] | None = None) -> int:
    """The job process: train, record the outcome. The inherited fd (``lock_fd``) holds the lock: it is
    released just before the final status is published, so a client that reads "succeeded" can start the next
    job at once (and if this process dies early, its exit releases the lock). ``on_finished`` sees the final
    status first (best effort: its failure must not lose the job's status)."""
    signal.signal(signal.SIGTERM, _stopped)
    if not sys.stdin.isatty():
        with contextlib.suppress(OSError, ValueError):
            sys.stdin.read()  # the starter closes our stdin once our status file names our pid
    settings = get_settings()
    path = settings.jobs_dir / f"{job_id}.json"
    status = JobStatus.from_dict(json.loads(path.read_text()))
    t0 = time.perf_counter()
    try:
        status.status, status.started_at, status.pid = "running", utc_now(), os.getpid()
        _write(path, status)
        proc = subprocess.run(command or train_command(settings), capture_output=True, text=True,  # noqa: S603
                              timeout=settings.retrain_timeout)
        status.exit_code = proc.returncode
        summary = parse_train_summary(proc.stdout)
        if summary is not None:
            status.record(summary)
        status.status = outcome_of_exit(proc.returncode)
        if status.status == "failed":
            status.error = _last_line(proc.stderr)
    except subprocess.TimeoutExpired:
        status.status, status.error = "failed", f"timed out after {settings.retrain_timeout} s"
    except JobStopped as e:  # subprocess.run has killed the training process
        status.status, status.error = "failed", str(e)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finishing anyway: publish the status
    status.finished_at, status.duration_s = utc_now(), round(time.perf_counter() - t0, 3)
    # observe, release the lock, then publish the final status: a reader that sees it finds the lock free
    if on_finished is not None:
        with contextlib.suppress(Exception):
            on_finished(status)
    if lock_fd is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            os.close(lock_fd)
    _write(path, status)
    return 0


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:500] if lines else "training failed without a message"
