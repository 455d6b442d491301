"""Training data sources on real stores: labelled production rows read from a real SQLite prediction store
(filled through its own write API), the SQL source on a real SQLite database, the combination policy and the
newest-rows holdout (app/sources, app/training/data.py). No model is trained here (see
tests/integration/test_train_sources.py)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from app.config import DataConfig, DataSource, Settings, TrainingConfig
from app.datasets import DataError, generate_synthetic
from app.monitoring.store import PredictionStore
from app.sources.production import read_production_source
from app.sources.sql import read_sql_source
from app.training.data import load_training_data
from app.training.validate import ValidationFailed
from tests.production_data import fill_store

DAY = 86_400.0


def config(*sources: DataSource, holdout: str = "newest") -> TrainingConfig:
    return TrainingConfig(cv_folds=3, data=DataConfig(sources=list(sources), holdout=holdout))


BASE = DataSource(name="base", kind="file")
PROD = DataSource(name="production", kind="production", window_days=30, min_rows=50)


@pytest.fixture
def env(tmp_path, schema):
    settings = Settings(models_dir=tmp_path / "models")  # no MLflow store: nothing here registers
    store = PredictionStore(settings.prediction_store_url)
    base = tmp_path / "base.csv"
    generate_synthetic(600, seed=5).to_csv(base, index=False)
    yield settings, store, base
    store.dispose()


def test_production_rows_labelled_non_shadow_deduplicated_in_window_schema_checked(env, schema):
    settings, store, _ = env
    now = time.time()
    prod = generate_synthetic(120, seed=21)
    fill_store(store, prod, schema, prefix="a", end_unix=now - 60)
    fill_store(store, prod.iloc[:30], schema, prefix="sh", end_unix=now - 60, shadow=True)  # shadow: never used
    fill_store(store, prod.iloc[:20], schema, prefix="u", end_unix=now - 60, with_outcomes=False)  # no outcome
    fill_store(store, prod.iloc[:15], schema, prefix="old", end_unix=now - 40 * DAY)  # outside the window
    fill_store(store, prod.iloc[:10], schema, prefix="other", end_unix=now - 60, model_name="another-model")
    dropped = [f for f in schema.feature_names if f != "age"]
    fill_store(store, prod.iloc[:7], schema, prefix="add", end_unix=now - 60, feature_names=dropped)
    fill_store(store, prod.iloc[:5], schema, prefix="rm", end_unix=now - 60,
               feature_names=[*schema.feature_names, "legacy_score"])
    # the same prediction id stored twice (a writer retry): one row
    store.insert_predictions([{**r, "ts": r["ts"]} for r in _rows(store, "a000003")])

    sf = read_production_source("production", store.url, schema, "credit-score", window_days=30)
    assert len(sf.raw) == 120 and list(sf.raw.columns) == [*schema.feature_names, schema.target.name]
    assert sf.excluded == {"schema_mismatch": 12, "duplicate_prediction_id": 1}
    note = next(n for n in sf.notes if "no longer match" in n)
    assert "12 labelled prediction(s)" in note and "features added since: age" in note
    assert "features removed since: legacy_score" in note
    assert (np.diff(sf.scored_at.astype("int64")) <= 0).all()  # newest first
    # the features as scored, and the outcome as posted
    assert sf.raw["limit_bal"].astype(float).tolist()[::-1] == prod["limit_bal"].astype(float).tolist()
    assert sf.raw[schema.target.name].tolist()[::-1] == prod[schema.target.name].astype(str).tolist()


def _rows(store: PredictionStore, rid: str) -> list[dict]:
    from app.monitoring.store import predictions

    with store.engine.connect() as conn:
        return [{k: v for k, v in r._mapping.items() if k != "id"}
                for r in conn.execute(sa.select(predictions).where(predictions.c.request_id == rid))]


def test_missing_or_disabled_store_gives_no_rows_and_creates_nothing(tmp_path, schema):
    url = f"sqlite:///{tmp_path / 'nothing.db'}"
    sf = read_production_source("production", url, schema, "credit-score", 30)
    assert len(sf.raw) == 0 and "does not exist yet" in sf.notes[0]
    assert not (tmp_path / "nothing.db").exists()
    assert "disabled" in read_production_source("production", None, schema, "credit-score").notes[0]


def test_newest_production_rows_are_the_holdout(env, schema):
    settings, store, base = env
    now = time.time()
    prod = generate_synthetic(300, seed=22)
    fill_store(store, prod, schema, end_unix=now - 60, step_s=600)
    data = load_training_data(settings, config(BASE, PROD), base, schema)
    out = data.to_json()
    by = {s["name"]: s for s in out["sources"]}
    assert by["base"]["used"] and by["production"]["used"] and by["production"]["rows"] == 300
    assert by["production"]["holdout_rows"] == 60 and by["base"]["holdout_rows"] == 0
    assert out["holdout"].startswith("newest 60 production rows")
    assert data.holdout.sum() == 60 and set(data.origin[data.holdout]) == {"production"}
    # the held-out rows are the 60 most recently scored applications
    held = data.df[data.holdout]
    newest = prod.iloc[-60:]
    assert sorted(held["limit_bal"].tolist()) == sorted(newest["limit_bal"].astype(float).tolist())
    assert by["production"]["window"]["last_scored"] and by["production"]["digest"]
    # a random holdout when asked
    assert load_training_data(settings, config(BASE, PROD, holdout="random"), base, schema).holdout is None


def test_too_few_labelled_rows_are_not_used_and_required_ones_fail(env, schema):
    settings, store, base = env
    fill_store(store, generate_synthetic(30, seed=23), schema)
    data = load_training_data(settings, config(BASE, PROD), base, schema)
    prod = next(s for s in data.sources if s.name == "production")
    assert not prod.used and "fewer than min_rows 50" in prod.notes[-1]
    assert data.holdout is None and len(data.df) == len(data.frames["base"])
    with pytest.raises(DataError, match="fewer than min_rows 50"):
        load_training_data(settings, config(BASE, PROD.model_copy(update={"required": True})), base, schema)


def test_production_rows_the_schema_refuses_now_are_left_out_with_a_count(env, schema):
    settings, store, base = env
    prod = generate_synthetic(100, seed=24)
    prod.loc[:9, "age"] = 150  # outside the schema's range (as if it had been narrowed since)
    fill_store(store, prod, schema)
    data = load_training_data(settings, config(BASE, PROD), base, schema)
    use = next(s for s in data.sources if s.name == "production")
    assert use.used and use.rows == 90 and use.excluded["invalid_for_schema"] == 10
    assert any("age" in n and "10 labelled" in n for n in use.notes)


def test_max_rows_keeps_the_newest_production_rows(env, schema):
    settings, store, base = env
    prod = generate_synthetic(200, seed=25)
    fill_store(store, prod, schema)
    data = load_training_data(settings, config(BASE, PROD.model_copy(update={"max_rows": 100})), base, schema)
    assert len(data.frames["production"]) == 100
    assert sorted(data.frames["production"]["limit_bal"]) == sorted(prod["limit_bal"].iloc[-100:].astype(float))
    assert next(s for s in data.sources if s.name == "production").excluded == {"over_max_rows": 100}


def test_sql_source_by_query_and_by_table(tmp_path, schema):
    db = tmp_path / "warehouse.db"
    url = f"sqlite:///{db}"
    frame = generate_synthetic(200, seed=26)
    uci = frame.rename(columns={v: k for k, v in schema.source_columns.items()})  # the UCI codes X1..X23, Y
    eng = sa.create_engine(url)
    uci.to_sql("applications", eng, index=False)
    eng.dispose()
    by_table = read_sql_source("warehouse", url, schema, table="applications")
    assert list(by_table.raw.columns) == list(frame.columns) and len(by_table.raw) == 200
    by_query = read_sql_source("warehouse", url, schema, query="SELECT * FROM applications WHERE X5 >= 40")
    assert len(by_query.raw) == int((frame["age"] >= 40).sum()) > 0
    with pytest.raises(DataError, match="no such table|missing_table"):
        read_sql_source("warehouse", url, schema, query="SELECT * FROM missing_table")
    with pytest.raises(DataError) as e:
        read_sql_source("warehouse", "postgresql+psycopg://u:s3cret@127.0.0.1:1/db", schema, table="t")
    assert "s3cret" not in str(e.value) and "***" in str(e.value)


def test_sql_source_combined_with_the_base_file(env, tmp_path, schema, monkeypatch):
    settings, _, base = env
    url = f"sqlite:///{tmp_path / 'w.db'}"
    eng = sa.create_engine(url)
    generate_synthetic(150, seed=27).to_sql("apps", eng, index=False)
    eng.dispose()
    monkeypatch.setenv("TEST_WAREHOUSE_URL", url)
    sql = DataSource(name="warehouse", kind="sql", url_env="TEST_WAREHOUSE_URL", table="apps")
    data = load_training_data(settings, config(BASE, sql), base, schema)
    rows = {s.name: s.rows for s in data.sources}
    assert rows["warehouse"] == 150 and rows["base"] >= 590 and len(data.df) == sum(rows.values())
    assert data.holdout is None  # no production rows: the stratified random split


def test_a_curated_source_with_errors_stops_the_training(env, tmp_path, schema):
    settings, _, base = env
    bad = pd.read_csv(base).astype({"age": object})
    bad.loc[0, "age"] = "forty"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(ValidationFailed, match="age"):
        load_training_data(settings, config(BASE), path, schema)


def test_source_config_is_checked():
    with pytest.raises(ValidationError, match="needs url or url_env"):
        DataSource(name="w", kind="sql", table="t")
    with pytest.raises(ValidationError, match="exactly one of query or table"):
        DataSource(name="w", kind="sql", url="sqlite://", table="t", query="select 1")
    with pytest.raises(ValidationError, match="unique"):
        DataConfig(sources=[BASE, BASE])
    defaults = TrainingConfig().data
    assert [(s.name, s.kind) for s in defaults.sources] == [("base", "file"), ("production", "production")]
    assert defaults.holdout == "newest"
