"""The local stack the simulation runs on, in one working directory: the environment every component shares,
the ``credit-score`` commands as real subprocesses, and the service under real gunicorn (``credit-score serve``).

Nothing of the caller's own registry or store is touched: models, reports, the MLflow store and (unless
``store_url`` names another, e.g. PostgreSQL) the prediction store all live under the working directory. The
admin and feedback tokens are random per run and never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from app.config import PROJECT_ROOT


class SimulationError(RuntimeError):
    """A step of the loop did not do what the loop needs (its message says which and why)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train_config(n_estimators: int) -> dict[str, Any]:
    """A small, fast grid (one classifier, no sampler, 3 folds) on the base file plus the labelled production
    rows; the newest production rows are the holdout that gates the challenger against the champion."""
    return {"cv_folds": 3, "classifiers": ["xgboost"], "samplers": ["none"],
            "xgboost": {"n_estimators": n_estimators},
            "gate": {"floors": {"roc_auc": 0.70, "f1_macro": 0.60}, "epsilon": 0.01},
            "data": {"holdout": "newest", "sources": [
                {"name": "base", "kind": "file"},
                {"name": "production", "kind": "production", "window_days": 7, "min_rows": 200}]}}


class Stack:
    def __init__(self, workdir: Path, base_data: Path, store_url: str | None, port: int | None,
                 n_estimators: int = 150, ab_min_samples: int = 300):
        self.workdir = workdir
        self.admin_token, self.feedback_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.store_url = store_url or f"sqlite:///{(workdir / 'predictions.db').resolve()}"
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cfg = workdir / "train.yaml"
        cfg.write_text(yaml.safe_dump(train_config(n_estimators), sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_SCORE_", "MLFLOW_"))}
        # this checkout's code in every subprocess (the job runner passes PYTHONPATH on)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
        env.update({
            "CREDIT_SCORE_MODELS_DIR": str(workdir / "models"), "CREDIT_SCORE_REPORTS_DIR": str(workdir / "reports"),
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"), "CREDIT_SCORE_DATA": str(base_data),
            "CREDIT_SCORE_STORE_URL": self.store_url, "CREDIT_SCORE_ADMIN_TOKEN": self.admin_token,
            "CREDIT_SCORE_FEEDBACK_TOKEN": self.feedback_token, "CREDIT_SCORE_LOG_LEVEL": "WARNING",
            "CREDIT_SCORE_N_JOBS": "2", "CREDIT_SCORE_RETRAIN_CONFIG": str(cfg),
            "CREDIT_SCORE_RETRAIN_PROMOTE": "challenger", "CREDIT_SCORE_RETRAIN_TIMEOUT": "600",
            # the service: both variants hot-reload within a second; an A/B split once there is a challenger
            "CREDIT_SCORE_RELOAD_INTERVAL": "1", "CREDIT_SCORE_STORE_FLUSH_INTERVAL": "0.2",
            "CREDIT_SCORE_AB_MODE": "split", "CREDIT_SCORE_AB_SPLIT": "0.5",
            # the monitor's policy: drift in 3 features, or live ROC-AUC under 0.82 on 200 outcomes (v1: ~0.85)
            "CREDIT_SCORE_MONITOR_MIN_ROWS": "200", "CREDIT_SCORE_RETRAIN_DRIFT_FEATURES": "3",
            "CREDIT_SCORE_RETRAIN_AUC_FLOOR": "0.82", "CREDIT_SCORE_RETRAIN_MIN_LABELS": "200",
            "CREDIT_SCORE_ABTEST_MIN_SAMPLES": str(ab_min_samples),
        })
        self.env = env
        self.server: subprocess.Popen | None = None
        self.log = workdir / "logs"
        self.log.mkdir(parents=True, exist_ok=True)
        self.config = cfg

    # ---- the credit-score commands -------------------------------------------------------------------
    def cli(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """``credit-score ARGS`` as a subprocess of this stack; SimulationError on a non-zero exit if ``check``."""
        name = "-".join(a for a in args[:2] if not a.startswith("-"))
        proc = subprocess.run([sys.executable, "-m", "app.cli", *args], env=self.env, capture_output=True,  # noqa: S603
                              text=True, timeout=timeout, cwd=self.workdir)
        (self.log / f"{name}.log").write_text(proc.stdout + proc.stderr)
        if check and proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise SimulationError(f"credit-score {' '.join(args)} exited {proc.returncode}: {last}")
        return proc

    def cli_json(self, *args: str) -> Any:
        """The JSON document a command printed on stdout (the whole output, or its last JSON line)."""
        text = self.cli(*args).stdout.strip()
        try:
            return json.loads(text)
        except ValueError:
            pass
        for line in reversed(text.splitlines()):
            if line.startswith(("{", "[")):
                try:
                    return json.loads(line)
                except ValueError:
                    break
        raise SimulationError(f"credit-score {' '.join(args)} printed no JSON")

    # ---- the service -----------------------------------------------------------------------------------
    def serve(self, timeout: float = 90.0) -> None:
        """``credit-score serve`` (gunicorn, 2 workers) on 127.0.0.1; returns once it answers /health."""
        import urllib.request

        log = open(self.log / "serve.log", "w")  # noqa: SIM115 (the server's whole life)
        self.server = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port), "--workers", "2"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=1) as r:  # noqa: S310 (loopback)
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SimulationError(f"the service did not start; see {self.log / 'serve.log'}")

    def stop(self) -> None:
        """SIGTERM (graceful: in-flight requests finish, running jobs are stopped), SIGKILL after 30 s."""
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(5)

    def stop_jobs(self) -> None:
        """Stop a retrain job the monitor started and that is still running (the loop failed meanwhile)."""
        from app.config import Settings
        from app.jobs import ProcessRunner

        runner = ProcessRunner(Settings.from_env(self.env))
        job = runner.running()
        if job:
            runner.stop(job)


def wait_until(condition, timeout: float, interval: float = 0.2, what: str = "a condition") -> Any:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` s pass (SimulationError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SimulationError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
