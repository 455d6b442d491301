"""Shared fixtures: schemas, small data sets, settings pointing at a throw-away MLflow store."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT, Settings, TrainingConfig
from app.datasets import generate_synthetic
from app.schema import DatasetSchema
from tests.stores import seed_mlflow_store

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
    """Settings over tmp_path; a local MLflow store starts as a copy of one migrated empty store."""
    settings = Settings(models_dir=tmp_path / "models", reports_dir=tmp_path / "reports", n_jobs=2,
                        default_data=tmp_path / "data" / "default.csv", **over)
    if settings.tracking_uri.startswith("sqlite:///"):
        seed_mlflow_store(Path(settings.tracking_uri.removeprefix("sqlite:///")))
    return settings


MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def clear_mlflow_env() -> None:
    for name in MLFLOW_ENV:
        os.environ.pop(name, None)


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """mlflow.set_tracking_uri / set_registry_uri write these into os.environ, and Settings reads them: every
    fixture (session-scoped ones included, which are set up before any function-scoped fixture) starts clean,
    so a URI leaked by an earlier test or fixture never points it at another test's store."""
    clear_mlflow_env()
    yield


@pytest.fixture(autouse=True)
def _clean_mlflow_env():
    """...and every test body too, and none leaves one behind."""
    clear_mlflow_env()
    yield
    clear_mlflow_env()


@pytest.fixture(autouse=True)
def _no_dead_log_handlers():
    """create_app configures the root logger on the sys.stdout of the moment: under ``capsys`` a stream that is
    closed when the test ends. A handler left on it would print "--- Logging error ---" with a traceback into
    whatever a later test in the same worker captures (a CLI's stderr): drop it with its stream."""
    yield
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(getattr(h, "stream", None), "closed", False):
            root.removeHandler(h)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


# `make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadgroup`): most of its time is spent
# waiting on real processes (playbooks, image builds, servers), so two workers keep both cores busy. Tests are
# scheduled by group: one file is one group, so its module and session fixtures are built once; the suites
# that share state across files are one group each, in collection order: the Vault tests (one OpenBao server,
# and the leak search reads the logs the others wrote), the podman tests (they build the images once and reuse
# them, the Kubernetes pod runs included), Ansible (one deployment) and ELK (one service run).
SHARED_GROUPS = {("infra", "vault"): "vault", ("infra", "containers"): "podman", ("infra", "ansible"): "ansible",
                 ("infra", "elk"): "elk"}
PODMAN_FILES = {"test_podman_kube_play.py", "test_mlflow_component.py"}


def xdist_group(path: Path) -> str:
    rel = path.relative_to(PROJECT_ROOT / "tests")
    if rel.name in PODMAN_FILES:
        return "podman"
    return SHARED_GROUPS.get(rel.parts[:2], rel.as_posix())


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marker to schedule the test
def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group(item.path)))
