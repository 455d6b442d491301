"""The retrain job package (app/jobs/): the summary parser and exit codes both runners share, the status
document, and the process runner's lock, outcome and stop, with a stand-in training command
(tests/unit/jobs_program.py) instead of a training run. The Kubernetes runner: tests/unit/test_kube_jobs.py;
a real training job under gunicorn: tests/integration/test_serve_gunicorn.py."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from app import jobs
from app.config import Settings
from app.config.groups import JOB_ENV_ALLOW
from app.exit_codes import ExitCode
from app.jobs import JobBusy, JobStatus, ProcessRunner, outcome_of_exit, parse_train_summary
from app.jobs.process import job_env

SUMMARY = {"version": "4", "alias": "challenger", "gate": {"passed": False, "reasons": ["roc_auc below 0.9"]},
           "selected": {"label": "xgboost + smote"}, "holdout": {"roc_auc": 0.8}, "grid": []}


def process_group_alive(pgid: int) -> bool:
    """A process of the group that is not a zombie (an orphan may wait a while for its reaper)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_summary_is_the_last_json_object_with_a_version_and_a_gate():
    text = "progress 10%\n" + json.dumps(SUMMARY) + '\n{"message": "done", "log.level": "info"}\n[1, 2]\n'
    s = parse_train_summary(text)
    assert s.version == "4" and s.alias == "challenger" and s.gate["passed"] is False
    assert s.selected == {"label": "xgboost + smote"} and s.holdout == {"roc_auc": 0.8}
    assert parse_train_summary('{"message": "no summary"}\nnot json\n') is None
    assert parse_train_summary("") is None


def test_exit_codes_name_the_outcome():
    assert [outcome_of_exit(c) for c in (0, 1, 2, 3, -15)] == ["succeeded", "failed", "failed", "gate_failed",
                                                               "failed"]
    assert ExitCode.GATE == 3 and ExitCode.DATA == 1


def test_the_status_document_round_trips_and_shows_only_known_extras():
    st = JobStatus(id="abc", reason="api", created_at="2026-01-01T00:00:00Z")
    doc = st.to_dict()
    assert set(doc) == {"id", "status", "reason", "created_at", "started_at", "finished_at", "duration_s",
                        "version", "alias", "gate", "error", "runner"}
    st.record(parse_train_summary(json.dumps(SUMMARY)))
    st.exit_code = 3
    doc = st.to_dict()
    assert doc["version"] == "4" and doc["exit_code"] == 3 and doc["holdout"] == {"roc_auc": 0.8}
    assert JobStatus.from_dict({**doc, "from_a_newer_release": 1}) == st
    assert not JobStatus(id="x", status="failed").unfinished and JobStatus(id="x").unfinished


def test_errors_of_the_kubernetes_runner_are_job_runner_errors():
    assert issubclass(jobs.KubeError, jobs.JobRunnerError)


@pytest.fixture
def fake_training(tmp_path, monkeypatch):
    """Settings for the process runner, and a function that sets the stand-in training command."""
    observed = tmp_path / "observed"
    monkeypatch.setenv("FAKE_TRAIN_OBSERVED", str(observed))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parents[2]),
                                                      os.environ.get("PYTHONPATH", "")]))

    def command(code: str) -> None:
        monkeypatch.setenv("FAKE_TRAIN_COMMAND", json.dumps([sys.executable, "-c", code]))

    settings = Settings(models_dir=tmp_path / "models", reports_dir=tmp_path / "reports",
                        job_env_allow=[*JOB_ENV_ALLOW, "FAKE_*"])  # the stand-in's own variables
    runner = ProcessRunner(settings, program="tests.unit.jobs_program")
    started: list[JobStatus] = []
    yield settings, runner, command, observed, started
    for st in started:  # nothing outlives the test, whatever it asserted
        runner.stop(st.id, timeout=2)


def _reap(pid: int) -> None:
    """The job is our child here (a server's worker in production): collect it so its group is really gone."""
    def gone() -> bool:
        try:
            return os.waitpid(pid, os.WNOHANG)[0] == pid
        except ChildProcessError:
            return True
    wait_until(gone)


def test_a_job_records_the_training_outcome_and_frees_the_lock(fake_training):
    settings, runner, command, observed, started = fake_training
    command(f"import json, sys; print('progress'); print(json.dumps({SUMMARY!r})); sys.exit(3)")
    st = runner.start("api")
    started.append(st)
    assert st.pid and st.started_by == os.getpid() and st.status == "queued"
    assert wait_until(lambda: not runner.read_status(st.id).unfinished)
    done = runner.read_status(st.id)
    assert done.status == "gate_failed" and done.exit_code == 3 and done.version == "4", done
    assert done.gate == SUMMARY["gate"] and done.started_at and done.finished_at and done.duration_s >= 0
    assert observed.read_text() == "gate_failed\n" and runner.running() is None
    _reap(st.pid)
    assert [j["id"] for j in jobs.recent(settings)] == [st.id] and jobs.read_status(settings, "../x") is None


def test_one_job_at_a_time_and_stop_ends_its_process_group(fake_training):
    settings, runner, command, observed, started = fake_training
    command("import time; time.sleep(120)")
    st = runner.start("api")
    started.append(st)
    assert wait_until(lambda: runner.read_status(st.id).status == "running")
    with pytest.raises(JobBusy) as busy:
        runner.start("api")
    assert busy.value.running == st.id and runner.running() == st.id
    assert jobs.stop_jobs_started_by(settings, [os.getpid() + 100000]) == []  # another server's workers
    assert process_group_alive(st.pid)
    assert jobs.stop_jobs_started_by(settings, [os.getpid()]) == [st.id]
    _reap(st.pid)
    assert not process_group_alive(st.pid)  # the job and its training command
    got = runner.read_status(st.id)
    assert got.status == "failed" and "stopped by signal SIGTERM" in got.error and got.finished_at
    assert observed.read_text() == "failed\n" and runner.running() is None
    assert not runner.stop(st.id)  # not running any more


def test_a_job_stopped_during_its_start_up_is_recorded_as_failed(fake_training, monkeypatch):
    settings, runner, command, observed, started = fake_training
    command("import time; time.sleep(120)")
    monkeypatch.setenv("FAKE_JOB_STARTUP", "60")  # SIGTERM comes before run_job handles it: the job just dies
    st = runner.start("api")
    started.append(st)
    assert runner.stop(st.id)
    _reap(st.pid)
    assert not process_group_alive(st.pid) and runner.running() is None
    got = runner.read_status(st.id)
    assert got.status == "failed" and "before it recorded an outcome" in got.error and not observed.exists()


def test_a_killed_job_is_recorded_as_failed_and_its_training_command_is_killed(fake_training):
    settings, runner, command, observed, started = fake_training
    command("import time; time.sleep(120)")
    st = runner.start("api")
    started.append(st)
    assert wait_until(lambda: runner.read_status(st.id).status == "running")
    assert runner.read_status(st.id).status == "running"  # alive: left alone
    os.kill(st.pid, signal.SIGKILL)  # the OOM killer, say: no handler runs, no status is published
    _reap(st.pid)
    got = runner.read_status(st.id)
    assert got.status == "failed" and "ended without recording an outcome" in got.error and got.finished_at
    assert wait_until(lambda: not process_group_alive(st.pid)), "the orphaned training command still runs"
    assert [j.status for j in runner.recent()] == ["failed"]
    assert runner.running() is None and not observed.exists()
    nxt = runner.start("api")  # and the next job can start
    started.append(nxt)
    assert nxt.id != st.id


def test_the_job_environment_is_an_allow_list(tmp_path, monkeypatch):
    service = {"PATH": "/usr/bin", "LC_ALL": "C.UTF-8", "PROMETHEUS_MULTIPROC_DIR": "/tmp/prom",
               "CREDIT_SCORE_TRAINING__CV_FOLDS": "3", "CREDIT_SCORE_DATA": "/data/x.csv",
               "VAULT_TOKEN": "hvs.secret", "CREDIT_SCORE_ADMIN_TOKEN": "admin-secret",
               "CREDIT_SCORE_FEEDBACK_TOKEN": "feedback-secret", "CREDIT_SCORE_DATABASE_URL": "postgresql://u:p@db/x",
               "CREDIT_SCORE_VAULT_SECRET_ID": "approle-secret", "MLFLOW_TRACKING_PASSWORD": "mlflow-secret",
               "AWS_SECRET_ACCESS_KEY": "aws-secret"}
    settings = Settings(models_dir=tmp_path / "models")
    env = job_env(settings, service)
    assert {"PATH", "LC_ALL", "PROMETHEUS_MULTIPROC_DIR", "CREDIT_SCORE_TRAINING__CV_FOLDS",
            "CREDIT_SCORE_DATA"} <= set(env)
    assert not any("secret" in v or ":p@" in v for v in env.values()), env
    assert env["CREDIT_SCORE_MODELS_DIR"] == str(settings.models_dir)
    assert env["CREDIT_SCORE_STORE_URL"] == settings.prediction_store_url  # the default SQLite store
    # allow-listed on purpose, it passes
    monkeypatch.setenv("CREDIT_SCORE_JOB_ENV_ALLOW", '["PATH", "MLFLOW_TRACKING_*"]')
    from app.config import get_settings

    get_settings.cache_clear()
    try:
        configured = get_settings()
        assert configured.job_env_allow == ["PATH", "MLFLOW_TRACKING_*"]
        assert job_env(configured, service)["MLFLOW_TRACKING_PASSWORD"] == "mlflow-secret"
    finally:
        get_settings.cache_clear()


def test_the_job_process_really_gets_the_allow_listed_environment(fake_training, monkeypatch):
    settings, runner, command, observed, started = fake_training
    monkeypatch.setenv("VAULT_TOKEN", "hvs.service-token")
    monkeypatch.setenv("CREDIT_SCORE_ADMIN_TOKEN", "admin-token-of-the-service")
    dump = observed.with_name("env.json")
    command(f"import json, os; json.dump(dict(os.environ), open({str(dump)!r}, 'w')); print('{{}}')")
    st = runner.start("api")
    started.append(st)
    assert wait_until(lambda: not runner.read_status(st.id).unfinished)
    _reap(st.pid)
    seen = json.loads(dump.read_text())
    assert "VAULT_TOKEN" not in seen and "CREDIT_SCORE_ADMIN_TOKEN" not in seen
    assert seen["PATH"] == os.environ["PATH"] and "FAKE_TRAIN_OBSERVED" in seen


def test_the_job_learns_from_the_services_store_and_gets_no_other_secret(tmp_path):
    """The store URL is what a retrain job needs to train on the labelled production rows: it is passed (the
    resolved one, e.g. from Vault) as CREDIT_SCORE_STORE_URL; the database URL's own variable and the other
    secrets stay behind."""
    service = {"PATH": "/usr/bin", "VAULT_TOKEN": "hvs.secret", "CREDIT_SCORE_ADMIN_TOKEN": "admin-secret",
               "CREDIT_SCORE_DATABASE_URL": "postgresql://u:p@db/x", "MLFLOW_TRACKING_PASSWORD": "mlflow-secret"}
    settings = Settings(models_dir=tmp_path / "models")
    env = job_env(settings, service, store_url="postgresql://svc:pw@db:5432/predictions")
    assert env["CREDIT_SCORE_STORE_URL"] == "postgresql://svc:pw@db:5432/predictions"
    assert "CREDIT_SCORE_DATABASE_URL" not in env
    assert not any("secret" in v or ":p@" in v for v in env.values()), env
    # no URL handed over: the settings' store (an explicit CREDIT_SCORE_STORE_URL, else the database URL)
    assert job_env(Settings(models_dir=tmp_path, store_url="postgresql://a:b@h/s"), service
                   )["CREDIT_SCORE_STORE_URL"] == "postgresql://a:b@h/s"
    assert job_env(Settings(models_dir=tmp_path, database_url="postgresql://c:d@h/s"), service
                   )["CREDIT_SCORE_STORE_URL"] == "postgresql://c:d@h/s"
    # the service runs without a store: so does the job (it does not read a default SQLite file of its own)
    assert job_env(Settings(models_dir=tmp_path, store_url="none"), service)["CREDIT_SCORE_STORE_URL"] == "none"


def test_the_job_process_gets_the_store_url_and_its_status_file_does_not(fake_training, monkeypatch):
    settings, runner, command, observed, started = fake_training
    monkeypatch.setenv("CREDIT_SCORE_DATABASE_URL", "postgresql://svc:db-password@db/x")
    dump = observed.with_name("env.json")
    command(f"import json, os; json.dump(dict(os.environ), open({str(dump)!r}, 'w')); print('{{}}')")
    st = runner.start("api", store_url="postgresql://svc:db-password@db/x")
    started.append(st)
    assert wait_until(lambda: not runner.read_status(st.id).unfinished)
    _reap(st.pid)
    seen = json.loads(dump.read_text())
    assert seen["CREDIT_SCORE_STORE_URL"] == "postgresql://svc:db-password@db/x"
    assert "CREDIT_SCORE_DATABASE_URL" not in seen
    assert "db-password" not in (settings.jobs_dir / f"{st.id}.json").read_text()

