"""Shared fixtures: schemas, small data sets, settings pointing at a throw-away MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import PROJECT_ROOT, Settings, TrainingConfig
from app.datasets import generate_synthetic
from app.schema import DatasetSchema

SCHEMAS = PROJECT_ROOT / "data" / "schemas"
UCI_SHARED = PROJECT_ROOT.parent / "shared" / "data" / "uci_credit_default.csv"


@pytest.fixture(scope="session")
def schema() -> DatasetSchema:
    return DatasetSchema.load(SCHEMAS / "uci_credit.yaml")


@pytest.fixture(scope="session")
def schema3() -> DatasetSchema:
    return DatasetSchema.load(SCHEMAS / "credit_rating_3class.yaml")


@pytest.fixture(scope="session")
def small_frame():
    return generate_synthetic(3000, seed=7)


def small_training_config(**over) -> TrainingConfig:
    """A grid that trains in seconds: every combination, few trees, 3 folds."""
    base = {"cv_folds": 3, "random_forest": {"n_estimators": 20, "max_depth": 6},
            "xgboost": {"n_estimators": 40}}
    base.update(over)
    return TrainingConfig.model_validate(base)


def make_settings(tmp_path: Path, **over) -> Settings:
    return Settings(models_dir=tmp_path / "models", reports_dir=tmp_path / "reports", n_jobs=2,
                    default_data=tmp_path / "data" / "default.csv", **over)


@pytest.fixture(autouse=True)
def _clean_mlflow_env(monkeypatch):
    """mlflow.set_tracking_uri / set_registry_uri write these into os.environ: start every test clean."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path)
