import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from app.datasets import generate_synthetic
from tests.cli_runner import copy_store, invoke_cli

SMALL_CONFIG = {"cv_folds": 3, "random_forest": {"n_estimators": 20, "max_depth": 6}, "xgboost": {"n_estimators": 40}}


def cli_settings(root: Path) -> dict[str, str]:
    """The CREDIT_SCORE_* variables of a `credit-score` command working on a store under ``root``."""
    return dict(CREDIT_SCORE_MODELS_DIR=str(root / "models"), CREDIT_SCORE_REPORTS_DIR=str(root / "reports"),
                CREDIT_SCORE_DEFAULT_DATA=str(root / "default.csv"), CREDIT_SCORE_DEFAULT_DATA_ROWS="2500",
                CREDIT_SCORE_N_JOBS="2")


def use_cli_settings(mp: pytest.MonkeyPatch, root: Path) -> dict[str, str]:
    """Set them in this process (no other CREDIT_SCORE_* or MLFLOW_* variable) for in-process invocations."""
    for name in [k for k in os.environ if k.startswith(("CREDIT_SCORE_", "MLFLOW_"))]:
        mp.delenv(name)
    env = cli_settings(root)
    for name, value in env.items():
        mp.setenv(name, value)
    return env


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """A models directory whose MLflow store has its tables and nothing registered: creating them takes MLflow
    seconds (its schema migrations), copying them a few milliseconds."""
    from app.config import Settings
    from app.registry import Registry

    models = tmp_path_factory.mktemp("empty-store") / "models"
    assert Registry(Settings(models_dir=models)).versions() == []
    return models


@pytest.fixture
def cli_env(tmp_path, monkeypatch, empty_store) -> dict[str, str]:
    """The `credit-score` command (tests.cli_runner.invoke_cli) works on an empty store in tmp_path."""
    copy_store(empty_store, tmp_path / "models")
    return use_cli_settings(monkeypatch, tmp_path)


@pytest.fixture
def small_config(tmp_path) -> Path:
    p = tmp_path / "train.yaml"
    p.write_text(yaml.safe_dump(SMALL_CONFIG))
    return p


@dataclass
class TrainedStore:
    """A store with one model trained by `credit-score train --json` (the small grid): version 1, champion."""

    root: Path  # models/ (the MLflow store), reports/
    data: Path  # the training data: 2,500 synthetic rows, seed 11
    config: Path  # the small grid
    out: dict  # what `train --json` printed


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory, empty_store) -> TrainedStore:
    """Trained once per session; tests that register or move aliases work on a copy (``trained_copy``)."""
    root = tmp_path_factory.mktemp("trained")
    data, config = root / "data.csv", root / "train.yaml"
    generate_synthetic(2500, seed=11).to_csv(data, index=False)
    config.write_text(yaml.safe_dump(SMALL_CONFIG))
    copy_store(empty_store, root / "models")
    with pytest.MonkeyPatch.context() as mp:
        use_cli_settings(mp, root)
        proc = invoke_cli(["train", "--config", config, "--data", data, "--json", "--quiet"], check=True)
    return TrainedStore(root=root, data=data, config=config, out=json.loads(proc.stdout))


@pytest.fixture
def trained_copy(trained_store, tmp_path, monkeypatch) -> TrainedStore:
    """A copy of the session's trained store in tmp_path, which the `credit-score` command works on."""
    copy_store(trained_store.root / "models", tmp_path / "models")
    use_cli_settings(monkeypatch, tmp_path)
    return TrainedStore(root=tmp_path, data=trained_store.data, config=trained_store.config, out=trained_store.out)


@pytest.fixture
def trained_in_place(trained_store, monkeypatch) -> TrainedStore:
    """The session's trained store itself, for tests that only read it (scoring): the command works on it."""
    use_cli_settings(monkeypatch, trained_store.root)
    return trained_store
