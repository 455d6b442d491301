"""`credit-score train` on base data plus labelled production data (issue 14, acceptance 1 and 6), against a real
MLflow store and a real SQLite prediction store filled through its own write API: `train --json` prints
data.sources with rows per source, the registered version's run lists the datasets (`registry show`), production
rows whose stored features no longer match the schema are counted and left out, and the challenger is gated on
the newest production rows, on which the champion is scored too."""

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from app.config import Settings
from app.datasets import generate_synthetic
from app.monitoring.store import PredictionStore
from app.registry import Registry
from app.schema import DatasetSchema
from tests.cli_runner import invoke_cli
from tests.conftest import SCHEMAS
from tests.production_data import fill_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY = {"cv_folds": 2, "classifiers": ["xgboost"], "samplers": ["none"], "xgboost": {"n_estimators": 20},
        "gate": {"floors": {"roc_auc": 0.6}, "epsilon": 0.3},
        "data": {"sources": [{"name": "base", "kind": "file"},
                             {"name": "production", "kind": "production", "window_days": 30, "min_rows": 100}]}}


def test_train_on_base_and_production_data_records_the_sources(cli_env, tmp_path):
    schema = DatasetSchema.load(SCHEMAS / "uci_credit.yaml")
    base = tmp_path / "base.csv"
    generate_synthetic(2000, seed=31).to_csv(base, index=False)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(TINY))
    train = ["train", "--config", config, "--data", base, "--json", "-q"]

    # v1: the store does not exist yet; the production source is reported unused, the holdout is random
    v1 = json.loads(invoke_cli(train, check=True).stdout)
    by = {s["name"]: s for s in v1["data"]["sources"]}
    assert by["base"]["used"] and not by["production"]["used"] and "does not exist yet" in by["production"]["notes"][0]
    assert v1["data"]["holdout"].startswith("stratified random")
    assert by["base"]["holdout_rows"] == math.ceil(0.2 * by["base"]["rows"])  # the random holdout is on record too

    # production: 500 labelled applications scored over the last ~8 hours, plus rows the training must not take
    settings = Settings(models_dir=tmp_path / "models")
    store = PredictionStore(settings.prediction_store_url)
    now = time.time()
    prod = generate_synthetic(500, seed=32)
    fill_store(store, prod, schema, end_unix=now - 60, step_s=60)
    fill_store(store, prod.iloc[:40], schema, prefix="shadow", end_unix=now - 30, shadow=True)
    older_schema = [f for f in schema.feature_names if f != "pay_6"] + ["bureau_score"]  # before a schema change
    fill_store(store, generate_synthetic(35, seed=33), schema, prefix="old", end_unix=now - 9 * 3600,
               feature_names=older_schema)
    store.dispose()

    proc = invoke_cli(train, check=True)
    v2 = json.loads(proc.stdout)
    assert v2["version"] == "2"
    by = {s["name"]: s for s in v2["data"]["sources"]}
    assert 1990 <= by["base"]["rows"] <= by["base"]["rows_read"] == 2000  # less the duplicates the schema drops
    assert by["production"]["used"] and by["production"]["rows"] == 500
    assert by["production"]["excluded"] == {"schema_mismatch": 35}  # acceptance 6: counted, left out
    note = by["production"]["notes"][0]
    assert "features added since: pay_6" in note and "features removed since: bureau_score" in note
    assert "no longer match" in proc.stderr  # and reported while training
    assert by["production"]["holdout_rows"] == 100 and by["base"]["holdout_rows"] == 0
    assert v2["data"]["holdout"].startswith("newest 100 production rows")
    assert by["production"]["window"]["first_scored"] and by["production"]["digest"]
    assert v2["data"]["rows"] == by["base"]["rows"] + 500

    # the registered version's MLflow run lists the datasets, and `registry show` prints them
    shown = json.loads(invoke_cli(["registry", "show", "2"], check=True).stdout)
    ds = {d["name"]: d for d in shown["datasets"]}
    assert set(ds) == {"base", "production", "holdout"}
    assert ds["base"]["context"] == "training" and ds["holdout"]["context"] == "holdout"
    assert ds["production"]["tags"]["rows"] == "500" and ds["production"]["tags"]["holdout_rows"] == "100"
    assert json.loads(ds["production"]["tags"]["excluded"]) == {"schema_mismatch": 35}
    assert ds["production"]["tags"]["sha256"] == by["production"]["digest"]
    assert ds["production"]["digest"] == by["production"]["digest"][:36]
    assert ds["base"]["tags"]["file_sha256"] == by["base"]["file_sha256"] and ds["base"]["source"]
    assert ds["holdout"]["tags"]["rows"] == "100"
    assert "password" not in json.dumps(shown)
    html = Path(v2["report"]).read_text(encoding="utf-8")
    assert "Data sources (holdout: newest 100 production rows" in html and "schema_mismatch: 35" in html

    # the gate scored the champion (v1) on the same holdout: the newest 100 production applications
    gate = _gate(settings, shown["run_id"])
    check = next(c for c in gate["checks"] if c["check"] == "champion")
    newest = prod.iloc[-100:]
    _, champion = Registry(settings).load("1")
    X = newest[schema.feature_names].to_numpy(dtype=float)  # noqa: N806
    y = (newest[schema.target.name].to_numpy() == schema.classes[schema.bad_index]).astype(int)
    assert check["champion"] == pytest.approx(roc_auc_score(y, champion.predict_proba(X)[:, schema.bad_index]),
                                              abs=1e-9)
    assert np.isfinite(check["value"])


def _gate(settings: Settings, run_id: str) -> dict:
    import mlflow

    path = mlflow.MlflowClient(tracking_uri=settings.tracking_uri).download_artifacts(run_id, "gate.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_production_and_sql_sources_on_postgresql(tmp_path):
    """The same readers on a real PostgreSQL server: the prediction store's labelled rows (shadow excluded, schema
    mismatch counted) and a SQL source by query, combined with the newest production rows held out."""
    import sqlalchemy as sa

    from app.config import DataConfig, DataSource, TrainingConfig
    from app.training.data import load_training_data
    from tests.integration.test_monitoring_store_outage import Postgres

    schema = DatasetSchema.load(SCHEMAS / "uci_credit.yaml")
    pg = Postgres()
    try:
        store = PredictionStore(pg.url)
        prod = generate_synthetic(250, seed=41)
        fill_store(store, prod, schema, step_s=30)
        fill_store(store, prod.iloc[:20], schema, prefix="sh", shadow=True)
        fill_store(store, prod.iloc[:9], schema, prefix="m", feature_names=schema.feature_names[:-1])
        store.dispose()
        eng = sa.create_engine(pg.url)
        generate_synthetic(400, seed=42).to_sql("applications", eng, index=False)
        eng.dispose()
        cfg = TrainingConfig(cv_folds=3, data=DataConfig(sources=[
            DataSource(name="warehouse", kind="sql", url=pg.url, query="SELECT * FROM applications"),
            DataSource(name="production", kind="production", url=pg.url, window_days=7, min_rows=100)]))
        data = load_training_data(Settings(models_dir=tmp_path / "models"), cfg, None, schema)
    finally:
        pg.destroy()
    by = {s.name: s for s in data.sources}
    assert by["warehouse"].rows == 400 and by["production"].rows == 250
    assert by["production"].excluded == {"schema_mismatch": 9}
    assert data.holdout.sum() == 50 and by["production"].holdout_rows == 50
    held = data.df[data.holdout]
    assert sorted(held["limit_bal"]) == sorted(prod["limit_bal"].iloc[-50:].astype(float))
