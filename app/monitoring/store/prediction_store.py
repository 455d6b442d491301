"""The prediction store: queries and inserts over the tables (:mod:`app.monitoring.store.tables`) on one engine.

SQLAlchemy Core on any URL: a SQLite file is the embedded default (``<models_dir>/predictions.db``, WAL mode so
several gunicorn workers and the monitor job share it), PostgreSQL by URL (``postgresql+psycopg://...``).
Predictions go in as rows (:func:`app.monitoring.store.record.record_rows`), in one ``json_each`` statement per
batch on SQLite and ``executemany`` elsewhere; outcomes (feedback) are joined to them by request id.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from app.monitoring.store.clock import utcnow
from app.monitoring.store.tables import PREDICTION_COLUMNS, feedback, metadata, monitor_runs, predictions
from app.sources.frame import describe_db_error, redact

_CHUNK = 500  # ids per IN (...) clause

# SQLite: one statement for a whole batch (rows as one JSON array, unpacked by json_each). An executemany
# releases and re-takes the GIL for every row, and each re-take competes with the worker's request thread:
# measured in-process, the request thread's CPU per request fell from ~530-640 to ~425 us with this statement
# (store off: ~400). Values are stored exactly as SQLAlchemy stores them (DateTime text, Boolean 0/1).
_SQLITE_INSERT = (f"INSERT INTO predictions ({', '.join(PREDICTION_COLUMNS)}) SELECT "  # noqa: S608 (constants only)
                  + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(PREDICTION_COLUMNS)))
                  + " FROM json_each(?)")


def _sqlite_batch(rows: Sequence[dict[str, Any]]) -> str:  # text: SQLite reads a BLOB as JSONB
    return orjson.dumps([[r["request_id"], r["ts"].strftime("%Y-%m-%d %H:%M:%S.%f"), r["model_name"],
                          r["model_version"], r["variant"], int(bool(r["shadow"])), r["predicted_class"],
                          float(r["probability"]), r["probabilities"], r["features"]] for r in rows]).decode()


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or used (the message says why; no credentials in it)."""


# a URL without its password, and one line about a database error without the statement or its parameters
# (personal data): the same helpers the training's store reader uses
redact_url = redact
describe_error = describe_db_error


# ---- the store -------------------------------------------------------------------------------------------
@dataclass
class FeedbackResult:
    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    unknown: list[str] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"received": self.received, "recorded": self.recorded, "duplicates": self.duplicates,
                "unknown": self.unknown, "conflicts": self.conflicts}


class PredictionStore:
    """Tables on one SQLAlchemy engine (created lazily, so constructing a store does no I/O)."""

    def __init__(self, url: str):
        self.url = url
        self._engine: sa.Engine | None = None
        self._schema_ready = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PredictionStore({redact_url(self.url)})"

    @property
    def dialect(self) -> str:
        return sa.engine.make_url(self.url).get_backend_name()

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> sa.Engine:
        url = sa.engine.make_url(self.url)
        if url.get_backend_name() == "sqlite":
            eng = sa.create_engine(url, connect_args={"timeout": 10, "check_same_thread": False})

            @sa.event.listens_for(eng, "connect")
            def _pragmas(dbapi_conn, _record):  # several processes share the file: WAL, wait on locks
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=10000")
                cur.close()

            return eng
        connect_args = {"connect_timeout": 5} if url.get_backend_name() == "postgresql" else {}
        return sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2, pool_recycle=1800,
                                connect_args=connect_args)

    def ensure_schema(self) -> None:
        """Create the tables when missing (idempotent; several processes may race to do it)."""
        if self._schema_ready:
            return
        url = sa.engine.make_url(self.url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            try:
                metadata.create_all(self.engine, checkfirst=True)
                break
            except sa.exc.OperationalError:  # another process created a table between check and create
                if attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))
        self._schema_ready = True

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    # ---- writes --------------------------------------------------------------------------------------
    def insert_predictions(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        self.ensure_schema()
        with self.engine.begin() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql(_SQLITE_INSERT, (_sqlite_batch(rows),))
            else:
                conn.execute(predictions.insert(), list(rows))

    def record_feedback(self, items: Sequence[tuple[str, str, datetime | None]]) -> FeedbackResult:
        """Outcomes for prediction ids: ``(prediction_id, outcome, observed_at)``. Unknown ids are reported; an id
        that already has an outcome is a duplicate (same outcome) or a conflict (another outcome, not
        overwritten). Raises :class:`StoreUnavailable` when the store cannot be used."""
        try:
            self.ensure_schema()
            try:
                return self._record_feedback(items)
            except sa.exc.IntegrityError:  # a concurrent request recorded one of these ids first: look again
                return self._record_feedback(items)
        except sa.exc.SQLAlchemyError as e:
            raise StoreUnavailable(describe_error(e)) from e
        except OSError as e:
            raise StoreUnavailable(f"{type(e).__name__}: {e.strerror or e}") from e

    def _record_feedback(self, items: Sequence[tuple[str, str, datetime | None]]) -> FeedbackResult:
        res = FeedbackResult(received=len(items))
        first: dict[str, tuple[str, datetime | None]] = {}
        for rid, outcome, observed in items:
            if rid in first:
                if first[rid][0] == outcome:
                    res.duplicates += 1
                else:
                    res.conflicts.append({"prediction_id": rid, "recorded": first[rid][0], "received": outcome})
                continue
            first[rid] = (outcome, observed)
        ids = list(first)
        now = utcnow()
        with self.engine.begin() as conn:
            known: set[str] = set()
            existing: dict[str, str] = {}
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                known.update(r[0] for r in conn.execute(
                    sa.select(predictions.c.request_id).where(predictions.c.request_id.in_(chunk)).distinct()))
                existing.update((r[0], r[1]) for r in conn.execute(
                    sa.select(feedback.c.request_id, feedback.c.outcome).where(feedback.c.request_id.in_(chunk))))
            new = []
            for rid in ids:
                outcome, observed = first[rid]
                if rid in existing:
                    if existing[rid] == outcome:
                        res.duplicates += 1
                    else:
                        res.conflicts.append({"prediction_id": rid, "recorded": existing[rid], "received": outcome})
                elif rid not in known:
                    res.unknown.append(rid)
                else:
                    new.append({"request_id": rid, "outcome": outcome, "observed_at": observed, "received_at": now})
            if new:
                conn.execute(feedback.insert(), new)
            res.recorded = len(new)
        return res

    def save_monitor_run(self, exposition: str, summary: dict[str, Any], at: datetime | None = None) -> None:
        self.ensure_schema()
        with self.engine.begin() as conn:
            conn.execute(monitor_runs.insert(), [{"ts": at or utcnow(), "exposition": exposition,
                                                  "summary": json.dumps(summary, default=str)}])

    def purge(self, before: datetime) -> dict[str, int]:
        """Retention: delete predictions, feedback and monitor runs older than ``before``."""
        self.ensure_schema()
        with self.engine.begin() as conn:
            out = {
                "predictions": conn.execute(predictions.delete().where(predictions.c.ts < before)).rowcount,
                "feedback": conn.execute(feedback.delete().where(feedback.c.received_at < before)).rowcount,
                "monitor_runs": conn.execute(monitor_runs.delete().where(monitor_runs.c.ts < before)).rowcount,
            }
        return {k: int(v or 0) for k, v in out.items()}

    # ---- reads ---------------------------------------------------------------------------------------
    def latest_monitor_run(self) -> tuple[datetime, str, dict[str, Any]] | None:
        self.ensure_schema()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(monitor_runs.c.ts, monitor_runs.c.exposition, monitor_runs.c.summary)
                               .order_by(monitor_runs.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        return row[0], row[1], json.loads(row[2])

    def read_predictions(self, start: datetime, end: datetime, labelled_only: bool = False,
                         versions: Iterable[str] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Predictions made in [start, end), newest first, each with its outcome (None when not known yet)."""
        self.ensure_schema()
        p, f = predictions, feedback
        join = p.outerjoin(f, f.c.request_id == p.c.request_id) if not labelled_only else \
            p.join(f, f.c.request_id == p.c.request_id)
        stmt = (sa.select(p.c.request_id, p.c.ts, p.c.model_version, p.c.variant, p.c.shadow, p.c.predicted_class,
                          p.c.probability, p.c.probabilities, p.c.features, f.c.outcome)
                .select_from(join).where(p.c.ts >= start, p.c.ts < end).order_by(p.c.ts.desc()))
        if versions is not None:
            stmt = stmt.where(p.c.model_version.in_(list(versions)))
        if limit:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def count(self, table: str = "predictions") -> int:
        self.ensure_schema()
        t = metadata.tables[table]
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
