"""The prediction store and its background writer (SQLite files in tmp; no server)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta

import numpy as np
import pytest

from app.config import Settings
from app.monitoring.store import (
    PredictionRecord,
    PredictionStore,
    StoreUnavailable,
    StoreWriter,
    item_rows,
    record_rows,
    utcnow,
)
from tests.monitoring_helpers import wait_for

NAMES = ["a", "b"]


def item(rid, n=1, variant="champion", shadow=False, batch=False, p=0.3, ts=None):
    proba = np.tile([1 - p, p], (n, 1))
    X = np.tile([1.0, np.nan], (n, 1))
    return PredictionRecord(prediction_id=rid, unix_time=ts or time.time(), model_name="credit-score",
                            model_version="1", variant=variant, shadow=shadow, batch=batch,
                            labels=["1" if p >= 0.5 else "0"] * n,
                            probabilities=proba if batch else proba[0], bad_index=1, features=X if batch else X[0],
                            feature_names=NAMES)


@pytest.fixture
def store(tmp_path):
    s = PredictionStore(f"sqlite:///{tmp_path / 'sub' / 'p.db'}")
    yield s
    s.dispose()


def counting_writer(store, **kw):
    drops: dict[str, int] = {}
    written = []

    def dropped(reason, n):
        drops[reason] = drops.get(reason, 0) + n

    kw = {"flush_interval": 0.05, "retry_interval": 0.1, **kw}
    w = StoreWriter(store, on_written=written.append, on_dropped=dropped, **kw)
    return w, drops, written


def test_settings_default_and_disabled(tmp_path):
    s = Settings(models_dir=tmp_path / "m")
    assert s.prediction_store_url == f"sqlite:///{(tmp_path / 'm').resolve() / 'predictions.db'}"
    for off in ("", "none", "None", "off"):
        assert Settings(models_dir=tmp_path, store_url=off).prediction_store_url is None
    assert Settings(store_url="postgresql+psycopg://u@h/db").prediction_store_url == "postgresql+psycopg://u@h/db"


def test_rows_from_items_single_batch_and_missing_values():
    rows = item_rows(item("r1"))
    assert len(rows) == 1 and rows[0]["request_id"] == "r1" and rows[0]["probability"] == pytest.approx(0.3)
    assert json.loads(rows[0]["features"]) == {"a": 1.0, "b": None}
    assert json.loads(rows[0]["probabilities"]) == [0.7, 0.3]
    rows = item_rows(item("b", n=3, batch=True, p=0.8))
    assert [r["request_id"] for r in rows] == ["b/0", "b/1", "b/2"]
    assert {r["predicted_class"] for r in rows} == {"1"}


def test_each_record_field_lands_in_its_column(store):
    """Every field of a record, each with a value no other field has, maps to its own column: a swapped or
    misnamed field in the row mapping (or a producer that fills the wrong field) fails here."""
    import sqlalchemy as sa

    from app.monitoring.store import PREDICTION_COLUMNS, predictions

    rec = PredictionRecord(prediction_id="req-7", unix_time=1_700_000_000.25, model_name="credit-score-x",
                           model_version="42", variant="challenger", shadow=True, batch=True,
                           labels=["bad", "good"], probabilities=np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]),
                           bad_index=2, features=np.array([[1.5, np.nan], [-3.0, 4.0]]), feature_names=["x", "y"])
    want = [
        {"request_id": "req-7/0", "ts": datetime(2023, 11, 14, 22, 13, 20, 250000), "model_name": "credit-score-x",
         "model_version": "42", "variant": "challenger", "shadow": True, "predicted_class": "bad", "probability": 0.7,
         "probabilities": "[0.1,0.2,0.7]", "features": '{"x":1.5,"y":null}'},
        {"request_id": "req-7/1", "ts": datetime(2023, 11, 14, 22, 13, 20, 250000), "model_name": "credit-score-x",
         "model_version": "42", "variant": "challenger", "shadow": True, "predicted_class": "good",
         "probability": 0.1, "probabilities": "[0.6,0.3,0.1]", "features": '{"x":-3.0,"y":4.0}'},
    ]
    rows = record_rows(rec)
    assert rows == want and all(tuple(r) == PREDICTION_COLUMNS for r in rows)
    one = record_rows(rec._replace(batch=False, shadow=False, labels=[0], probabilities=np.array([0.2, 0.3, 0.5]),
                                   features=None))
    assert [(r["request_id"], r["shadow"], r["predicted_class"], r["probability"], r["features"]) for r in one] == [
        ("req-7", False, "0", 0.5, None)]
    # the field order of the 12-field tuple the API used to queue, so positional construction keeps its meaning
    # (text_categories came after, with a default)
    assert PredictionRecord._fields == ("prediction_id", "unix_time", "model_name", "model_version", "variant",
                                        "shadow", "batch", "labels", "probabilities", "bad_index", "features",
                                        "feature_names", "text_categories")
    # a text category is stored as its string (the model read its index), a missing one as null
    text = record_rows(rec._replace(features=np.array([[1.5, 1.0], [-3.0, np.nan]]),
                                    text_categories={1: ["self-employed", "Ørsted/ÆØÅ"]}))
    assert [r["features"] for r in text] == ['{"x":1.5,"y":"Ørsted/ÆØÅ"}', '{"x":-3.0,"y":null}']
    # and the rows read back column for column
    store.insert_predictions(rows)
    with store.engine.connect() as conn:
        got = [dict(r._mapping) for r in conn.execute(
            sa.select(*(predictions.c[c] for c in PREDICTION_COLUMNS)).order_by(predictions.c.id))]
    assert got == want


def test_writer_batches_and_flushes(store):
    w, drops, written = counting_writer(store, batch_size=50)
    for i in range(120):
        assert w.submit(item(f"r{i}"))
    w.submit(item("batch", n=5, batch=True))
    w.submit(item("r0", variant="challenger", shadow=True))
    assert w.flush(10)
    assert store.count() == 126 and sum(written) == 126 and not drops
    assert max(written) <= 55  # batches of about batch_size rows (items are not split)
    w.close()


def test_submit_never_blocks_and_counts_a_full_queue(store):
    w, drops, _ = counting_writer(store, queue_size=10)
    w._pid = __import__("os").getpid()  # pretend started, but no thread drains: the queue fills
    t0 = time.perf_counter()
    results = [w.submit(item(f"r{i}")) for i in range(100)]
    assert time.perf_counter() - t0 < 0.5
    assert results.count(True) == 10 and drops == {"queue_full": 90}
    assert w.submit(item("b", n=7, batch=True)) is False and drops["queue_full"] == 97  # a batch counts its rows


def test_unreachable_store_drops_and_recovers(tmp_path, caplog):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the database directory should be")
    store = PredictionStore(f"sqlite:///{blocker / 'db' / 'p.db'}")
    w, drops, written = counting_writer(store, max_attempts=2, log_interval=0.0)
    with caplog.at_level("WARNING", logger="credit_score.store"):
        for i in range(20):
            w.submit(item(f"r{i}"))
        assert wait_for(lambda: drops.get("store_error", 0) == 20, timeout=10), drops
        assert not w.healthy and w.stats["failures"] >= 2
        assert any("write failed" in r.getMessage() for r in caplog.records)
        assert any("dropped" in r.getMessage() for r in caplog.records)
        # the store comes back: new records are written again
        blocker.unlink()
        for i in range(5):
            w.submit(item(f"s{i}"))
        assert wait_for(lambda: sum(written) == 5, timeout=10), (drops, written)
    assert w.healthy and store.count() == 5
    w.close()


def test_outage_buffers_then_writes_when_the_store_returns(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    store = PredictionStore(f"sqlite:///{blocker / 'db' / 'p.db'}")
    w, drops, written = counting_writer(store, max_attempts=1000, retry_interval=0.2)
    for i in range(30):
        w.submit(item(f"r{i}"))
    assert wait_for(lambda: w.stats["failures"] >= 2, timeout=5)
    blocker.unlink()
    assert wait_for(lambda: sum(written) == 30, timeout=10) and not drops
    w.close()


def test_close_flushes_what_is_queued(store):
    w, drops, _ = counting_writer(store, flush_interval=30, batch_size=10_000)
    for i in range(40):
        w.submit(item(f"r{i}"))
    w.close(timeout=10)
    assert store.count() == 40 and not drops


def test_start_again_after_fork(store):
    w, _, _ = counting_writer(store)
    w.submit(item("r1"))
    w._pid = -1  # as seen from a forked child: the parent's thread does not exist there
    w.submit(item("r2"))
    assert w.flush(10) and store.count() == 2
    w.close()


# ---- feedback ----------------------------------------------------------------------------------------------
def _seed(store, ids):
    store.insert_predictions([r for i in ids for r in item_rows(item(i))])


def test_feedback_known_unknown_duplicate_conflict(store):
    _seed(store, ["a", "b", "c"])
    res = store.record_feedback([("a", "1", None), ("b", "0", None), ("zz", "1", None), ("a", "1", None),
                                 ("b", "1", None)])
    assert res.to_dict() == {"received": 5, "recorded": 2, "duplicates": 1, "unknown": ["zz"],
                             "conflicts": [{"prediction_id": "b", "recorded": "0", "received": "1"}]}
    again = store.record_feedback([("a", "1", None), ("a", "0", None), ("c", "0", utcnow())])
    assert again.recorded == 1 and again.duplicates == 1 and again.conflicts[0]["recorded"] == "1"
    assert store.count("feedback") == 3


def test_feedback_many_ids_in_chunks(store):
    ids = [f"r{i}" for i in range(1200)]
    _seed(store, ids)
    res = store.record_feedback([(i, "0", None) for i in ids] + [("nope", "1", None)])
    assert res.recorded == 1200 and res.unknown == ["nope"]


def test_concurrent_feedback_is_idempotent(store):
    _seed(store, [f"r{i}" for i in range(50)])
    items = [(f"r{i}", "1", None) for i in range(50)]
    results = []
    threads = [threading.Thread(target=lambda: results.append(store.record_feedback(items))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.recorded for r in results) == 50 and store.count("feedback") == 50


def test_feedback_on_an_unreachable_store_raises(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreUnavailable):
        PredictionStore(f"sqlite:///{tmp_path / 'f' / 'p.db'}").record_feedback([("a", "1", None)])


# ---- reads and retention -----------------------------------------------------------------------------------
def test_window_reads_join_outcomes_and_retention_purges(store):
    old = time.time() - 100 * 86400
    store.insert_predictions(item_rows(item("old", ts=old)) + item_rows(item("new")) + item_rows(item("new2")))
    store.record_feedback([("old", "1", None), ("new", "0", None)])
    now = utcnow()
    rows = store.read_predictions(now - timedelta(days=1), now + timedelta(seconds=5))
    assert {r["request_id"]: r["outcome"] for r in rows} == {"new": "0", "new2": None}
    assert [r["request_id"] for r in store.read_predictions(now - timedelta(days=365), now + timedelta(seconds=5),
                                                            labelled_only=True)] == ["new", "old"]
    store.save_monitor_run("# text\n", {"k": 1}, at=now - timedelta(days=120))
    deleted = store.purge(now - timedelta(days=90))
    assert deleted["predictions"] == 1 and deleted["monitor_runs"] == 1
    assert store.count() == 2


def test_latest_monitor_run_reaches_the_writer(store):
    w, _, _ = counting_writer(store, monitor_refresh=0.05)
    w.start()
    store.save_monitor_run("credit_score_drift_psi{feature=\"a\"} 0.5\n", {"ok": True})
    assert wait_for(lambda: "credit_score_drift_psi" in w.monitor_text, timeout=5)
    w.close()


def test_store_url_from_the_database_url_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDIT_SCORE_DATABASE_URL", "postgresql+psycopg://app:pw@db:5432/credit")
    assert Settings(models_dir=tmp_path).prediction_store_url == "postgresql+psycopg://app:pw@db:5432/credit"
    assert Settings(models_dir=tmp_path, store_url="none").prediction_store_url is None  # explicit wins
    assert "pw" not in repr(Settings(models_dir=tmp_path))


def test_sqlite_batch_statement_stores_exactly_what_sqlalchemy_would(store, tmp_path):
    """SQLite batches go in as one json_each statement; every value reads back as SQLAlchemy's own insert of the
    same rows stores it (times to the microsecond, booleans, floats, NULL features, unicode ids)."""
    import sqlalchemy as sa

    from app.monitoring.store import predictions

    rows = [r for i, it in enumerate([item("r-é", shadow=True, p=0.123456789), item("b", n=3, batch=True, p=0.7),
                                       item("c", ts=1_700_000_000.000001)]) for r in item_rows(it)]
    rows[-1]["features"] = None
    store.insert_predictions(rows)
    plain = PredictionStore(f"sqlite:///{tmp_path / 'plain.db'}")
    plain.ensure_schema()
    with plain.engine.begin() as conn:
        conn.execute(predictions.insert(), rows)  # SQLAlchemy's executemany, the reference
    cols = [c for c in predictions.columns if c.name != "id"]

    def read(s):
        with s.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(*cols).order_by(predictions.c.id))]

    got, want = read(store), read(plain)
    plain.dispose()
    assert got == want and len(got) == 5
    assert got[0][0] == "r-é" and got[0][5] is True and got[0][7] == 0.123456789
    assert got[-1][9] is None and got[-1][1].microsecond == want[-1][1].microsecond
