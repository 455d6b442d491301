"""The make targets the Jenkins Train stages call (issue 14, acceptance 4): `make train-ci` trains on the data
CREDIT_SCORE_DATA names (what the stage binds from the training-data-source credential or the TRAIN_DATA
parameter), registers it with that data's hash, and records the source in reports/train-data.json (archived with
the build); without data it refuses instead of falling back to synthetic data; synthetic data only with
TRAIN_SYNTHETIC=1. Real make, the real `credit-score train` (a one-combination grid), a real MLflow store in
tmp_path; the Makefile runs from a scratch directory so that its reports/ never touch the checkout."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.datasets import generate_synthetic
from tests.stores import seed_mlflow_store
from tests.tools import which

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAKEFILE = PROJECT_ROOT / "Makefile"
# one classifier, one sampler, few trees: this checks the data plumbing around a training, not the grid
TINY = {"CREDIT_SCORE_TRAINING__CV_FOLDS": "2", "CREDIT_SCORE_TRAINING__CLASSIFIERS": '["xgboost"]',
        "CREDIT_SCORE_TRAINING__SAMPLERS": '["none"]', "CREDIT_SCORE_TRAINING__XGBOOST__N_ESTIMATORS": "20",
        "CREDIT_SCORE_DEFAULT_DATA_ROWS": "2000"}


def train_data_tool():
    spec = importlib.util.spec_from_file_location("train_data", PROJECT_ROOT / "jenkins" / "train_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def workdir(tmp_path):
    if which("make") is None:
        pytest.skip("make is not installed")
    seed_mlflow_store(tmp_path / "models" / "mlflow.db")
    (tmp_path / "build").mkdir()
    return tmp_path


def make(workdir: Path, target: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_SCORE_", "MLFLOW_"))}
    base.update(TINY, CREDIT_SCORE_MODELS_DIR=str(workdir / "models"), CREDIT_SCORE_REPORTS_DIR=str(workdir / "r"),
                CREDIT_SCORE_DEFAULT_DATA=str(workdir / "synthetic" / "default.csv"), **env)
    argv = ["make", "-s", "-f", str(MAKEFILE), "-o", "setup", target, f"BIN={Path(sys.executable).parent}", *args]
    return subprocess.run(argv, cwd=workdir / "build", capture_output=True, text=True, env=base, timeout=900)


def registered_tags(workdir: Path, version: str) -> dict:
    from mlflow import MlflowClient

    uri = f"sqlite:///{workdir / 'models' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # not the registry an earlier test set globally
    return client.get_model_version("credit-score", version).tags


def test_train_ci_trains_on_the_configured_data_and_records_it(workdir):
    data = workdir / "applications.csv"
    generate_synthetic(2500, seed=21).to_csv(data, index=False)
    sha = hashlib.sha256(data.read_bytes()).hexdigest()

    done = make(workdir, "train-ci", CREDIT_SCORE_DATA=str(data))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"train: data {data}" in done.stdout
    reports = workdir / "build" / "reports"
    version = (reports / "registered-version").read_text().strip()
    assert version == "1", version
    # the registered model was trained on exactly that file
    assert registered_tags(workdir, version)["data_sha256"] == sha
    record = json.loads((reports / "train-data.json").read_text())
    assert record["synthetic"] is False and record["source"] == str(data) and record["variable"] == "CREDIT_SCORE_DATA"
    assert record["sha256"] == sha and record["bytes"] == data.stat().st_size and record["version"] == "1"
    # and the training's own lineage: the sources it used, with their rows (no prediction store here: base only)
    used = {s["name"]: s for s in record["data"]["sources"] if s["used"]}
    assert set(used) == {"base"} and used["base"]["rows_read"] == 2500 and used["base"]["file_sha256"] == sha
    assert not (workdir / "synthetic" / "default.csv").exists(), "the synthetic set was made anyway"


def test_no_data_is_refused_never_a_silent_synthetic_fallback(workdir):
    for target in ("train-ci", "train-check"):
        refused = make(workdir, target)
        assert refused.returncode != 0, refused
        assert "no training data configured" in refused.stderr and "TRAIN_SYNTHETIC=1" in refused.stderr, refused.stderr
        assert not (workdir / "build" / "reports" / "train.json").exists()
        assert not (workdir / "synthetic" / "default.csv").exists()
    both = make(workdir, "train-ci", "TRAIN_SYNTHETIC=1", CREDIT_SCORE_DATA=str(workdir / "x.csv"))
    assert both.returncode != 0 and "both CREDIT_SCORE_DATA and TRAIN_SYNTHETIC=1" in both.stderr, both.stderr
    bad = make(workdir, "train-check", "TRAIN_SYNTHETIC=yes")
    assert bad.returncode != 0 and "TRAIN_SYNTHETIC must be 1 or 0" in bad.stderr, bad.stderr


def test_synthetic_only_when_asked(workdir):
    done = make(workdir, "train-check", "TRAIN_SYNTHETIC=1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train: data the embedded synthetic set (TRAIN_SYNTHETIC=1)" in done.stdout
    record = json.loads((workdir / "build" / "reports" / "train-data.json").read_text())
    assert record["synthetic"] is True and record["source"] == "embedded synthetic data set" and record["rows"] == 2000
    assert record["version"] is None  # train-check registers nothing
    assert (workdir / "synthetic" / "default.csv").exists()


@pytest.mark.parametrize("source, shown", [
    ("s3://bucket/credit/applications.parquet", "s3://bucket/credit/applications.parquet"),
    ("https://user:s3cret@data.example.com/apps.csv?sig=abc&v=1", "https://***@data.example.com/apps.csv?sig=***&v=***"),
    ("postgresql://trainer:pw@db.internal:5432/credit", "postgresql://***@db.internal:5432/credit"),
    ("/srv/data/applications.csv", "/srv/data/applications.csv"),
])
def test_recorded_source_has_no_credentials(source, shown):
    assert train_data_tool().redact(source) == shown
