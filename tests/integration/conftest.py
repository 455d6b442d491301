import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.config import PROJECT_ROOT
from tests.stores import seed_mlflow_store


@pytest.fixture
def cli_env(tmp_path):
    """Environment for running the real `credit-score` command against a store in tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_SCORE_", "MLFLOW_"))}
    env.update(CREDIT_SCORE_MODELS_DIR=str(tmp_path / "models"), CREDIT_SCORE_REPORTS_DIR=str(tmp_path / "reports"),
               CREDIT_SCORE_DEFAULT_DATA=str(tmp_path / "default.csv"), CREDIT_SCORE_DEFAULT_DATA_ROWS="2500",
               CREDIT_SCORE_N_JOBS="2")
    seed_mlflow_store(tmp_path / "models" / "mlflow.db")  # a copy of one migrated store, not a migration per test
    return env


@pytest.fixture
def small_config(tmp_path) -> Path:
    p = tmp_path / "train.yaml"
    p.write_text(yaml.safe_dump({"cv_folds": 3, "random_forest": {"n_estimators": 20, "max_depth": 6},
                                 "xgboost": {"n_estimators": 40}}))
    return p


def run_cli(args, env, check=False, timeout=600):
    exe = Path(sys.executable).with_name("credit-score")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "app.cli"]
    proc = subprocess.run(cmd + list(args), env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=PROJECT_ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc
