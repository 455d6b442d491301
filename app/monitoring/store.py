"""The prediction store: every prediction, the outcomes observed later (feedback), and the monitor's results.

SQLAlchemy Core on any URL: a SQLite file is the embedded default (``<models_dir>/predictions.db``, WAL mode so
several gunicorn workers and the monitor job share it), PostgreSQL by URL (``postgresql+psycopg://...``).
``CREDIT_SCORE_STORE_URL=none`` disables the store.

Tables
    ``predictions``   one row per prediction: request id (``<id>/<row>`` for batch rows), time (UTC), model name,
                      version, variant (champion|challenger), shadow flag, predicted class, probability of the bad
                      class, all class probabilities (JSON list) and the features (JSON object, schema names).
    ``feedback``      the observed outcome per request id (first one wins; a repeat is a no-op).
    ``monitor_runs``  the monitor job's gauges (Prometheus text) and summary, newest last: the service exposes
                      the latest on /metrics, so Prometheus scrapes the monitor's results with the service.

Writes leave the request path (:class:`StoreWriter`): the request puts one tuple on a bounded queue without
blocking (``put_nowait``); a background thread per worker turns queued items into rows and inserts them in
batches (one ``json_each`` statement per batch on SQLite, ``executemany`` elsewhere). When the queue is full
the prediction is answered anyway and the record is dropped; when the store fails, the batch is retried a few
times (the queue buffers meanwhile) and then dropped. Every dropped record is counted in
``credit_score_store_dropped_total{reason}`` and logged at most once per interval.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa

log = logging.getLogger("credit_score.store")

MAX_ID = 160  # request ids are at most 128 characters; batch rows add "/<row>"
_CHUNK = 500  # ids per IN (...) clause

metadata = sa.MetaData()
_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

predictions = sa.Table(
    "predictions", metadata,
    sa.Column("id", _pk, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(MAX_ID), nullable=False, index=True),
    sa.Column("ts", sa.DateTime(), nullable=False, index=True),  # UTC
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("variant", sa.String(16), nullable=False),
    sa.Column("shadow", sa.Boolean(), nullable=False, default=False),
    sa.Column("predicted_class", sa.String(64), nullable=False),
    sa.Column("probability", sa.Float(), nullable=False),  # of the bad class
    sa.Column("probabilities", sa.Text(), nullable=False),  # JSON list in the schema's class order
    sa.Column("features", sa.Text(), nullable=True),  # JSON object; NULL when CREDIT_SCORE_STORE_FEATURES=false
)

# SQLite: one statement for a whole batch (rows as one JSON array, unpacked by json_each). An executemany
# releases and re-takes the GIL for every row, and each re-take competes with the worker's request thread:
# measured in-process, the request thread's CPU per request fell from ~530-640 to ~425 us with this statement
# (store off: ~400). Values are stored exactly as SQLAlchemy stores them (DateTime text, Boolean 0/1).
_INSERT_COLUMNS = ("request_id", "ts", "model_name", "model_version", "variant", "shadow", "predicted_class",
                   "probability", "probabilities", "features")
_SQLITE_INSERT = (f"INSERT INTO predictions ({', '.join(_INSERT_COLUMNS)}) SELECT "  # noqa: S608 (constants only)
                  + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(_INSERT_COLUMNS)))
                  + " FROM json_each(?)")


def _sqlite_batch(rows: Sequence[dict[str, Any]]) -> str:  # text: SQLite reads a BLOB as JSONB
    return orjson.dumps([[r["request_id"], r["ts"].strftime("%Y-%m-%d %H:%M:%S.%f"), r["model_name"],
                          r["model_version"], r["variant"], int(bool(r["shadow"])), r["predicted_class"],
                          float(r["probability"]), r["probabilities"], r["features"]] for r in rows]).decode()


feedback = sa.Table(
    "feedback", metadata,
    sa.Column("request_id", sa.String(MAX_ID), primary_key=True),
    sa.Column("outcome", sa.String(64), nullable=False),  # the observed class, as its string form
    sa.Column("observed_at", sa.DateTime(), nullable=True),
    sa.Column("received_at", sa.DateTime(), nullable=False, index=True),
)

monitor_runs = sa.Table(
    "monitor_runs", metadata,
    sa.Column("id", _pk, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.DateTime(), nullable=False, index=True),
    sa.Column("exposition", sa.Text(), nullable=False),  # Prometheus text format
    sa.Column("summary", sa.Text(), nullable=False),  # JSON
)


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or used (the message says why; no credentials in it)."""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def redact_url(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "<unparsable store URL>"


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
        """Outcomes for request ids: ``(request_id, outcome, observed_at)``. Unknown ids are reported; an id
        that already has an outcome is a duplicate (same outcome) or a conflict (another outcome, not
        overwritten). Raises :class:`StoreUnavailable` when the store cannot be used."""
        try:
            self.ensure_schema()
            try:
                return self._record_feedback(items)
            except sa.exc.IntegrityError:  # a concurrent request recorded one of these ids first: look again
                return self._record_feedback(items)
        except sa.exc.SQLAlchemyError as e:
            raise StoreUnavailable(_describe(e)) from e
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
                    res.conflicts.append({"request_id": rid, "recorded": first[rid][0], "received": outcome})
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
                        res.conflicts.append({"request_id": rid, "recorded": existing[rid], "received": outcome})
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


def _describe(e: BaseException) -> str:
    """One line about a database error, without the SQL statement or parameters (personal data)."""
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip().splitlines()
    return f"{type(orig or e).__name__}: {text[0][:300] if text else ''}"


# ---- queued items -> rows --------------------------------------------------------------------------------
# One queue item per request (a batch request is one item), cheap to build in the request path:
# (request_id, unix_time, model_name, model_version, variant, shadow, batch, labels, proba (n, K),
#  bad_index, X (n, d) or None, feature_names). Batch rows get the request id "<request_id>/<row>".
Item = tuple


def item_size(item: Item) -> int:
    return len(item[7])


def item_rows(item: Item) -> list[dict[str, Any]]:
    rid, ts, name, version, variant, shadow, batch, labels, proba, bad, X, names = item  # noqa: N806
    proba = np.asarray(proba, dtype=float).reshape(len(labels), -1)
    when = to_utc(ts)
    feats = None if X is None else np.asarray(X, dtype=float).reshape(len(labels), -1)
    rows = []
    for i, label in enumerate(labels):  # orjson: compact JSON, NaN (a missing value) -> null
        features = None if feats is None else orjson.dumps(dict(zip(names, feats[i].tolist(), strict=True))).decode()
        rows.append({"request_id": f"{rid}/{i}" if batch else rid, "ts": when, "model_name": name,
                     "model_version": version, "variant": variant, "shadow": shadow,
                     "predicted_class": str(label), "probability": float(proba[i, bad]),
                     "probabilities": orjson.dumps([round(v, 6) for v in proba[i].tolist()]).decode(),
                     "features": features})
    return rows


# ---- the background writer -------------------------------------------------------------------------------
class StoreWriter:
    """A bounded queue and one daemon thread per process that inserts queued predictions in batches.

    ``submit`` never blocks and never raises: a full queue drops the item (counted). The thread flushes when a
    batch is full or every ``flush_interval`` seconds; a failed batch is retried ``max_attempts`` times,
    ``retry_interval`` seconds apart, while the queue buffers new items; then it is dropped (counted). The same
    thread refreshes the latest monitor results every ``monitor_refresh`` seconds (served on /metrics).
    """

    def __init__(self, store: PredictionStore, queue_size: int = 10_000, batch_size: int = 500,
                 flush_interval: float = 1.0, retry_interval: float = 5.0, max_attempts: int = 3,
                 monitor_refresh: float = 15.0, on_written: Callable[[int], None] | None = None,
                 on_dropped: Callable[[str, int], None] | None = None,
                 on_depth: Callable[[int], None] | None = None, log_interval: float = 30.0):
        self.store = store
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_interval = retry_interval
        self.max_attempts = max_attempts
        self.monitor_refresh = monitor_refresh
        self.log_interval = log_interval
        self._on_written = on_written or (lambda n: None)
        self._on_dropped = on_dropped or (lambda reason, n: None)
        self._on_depth = on_depth or (lambda n: None)
        self._q: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._start_lock = threading.Lock()
        self._drops: dict[str, int] = {}  # since the last warning
        self._last_warning = 0.0
        self._last_error: str | None = None
        self.monitor_text = ""  # the latest monitor run's gauges (Prometheus text), "" until one exists
        self.healthy = True
        self.stats = {"written": 0, "dropped": 0, "batches": 0, "failures": 0}

    # ---- request path --------------------------------------------------------------------------------
    def submit(self, item: Item) -> bool:
        """Queue one prediction item; False (and counted) when the queue is full. Never blocks."""
        if self._pid != os.getpid():
            self.start()
        try:
            self._q.put_nowait(item)
            return True
        except queue.Full:
            self._dropped("queue_full", item_size(item))
            return False

    # ---- lifecycle -----------------------------------------------------------------------------------
    def ensure_started(self) -> None:
        if self._pid != os.getpid():
            self.start()

    def start(self) -> None:
        """Start the thread in this process (again after a fork: threads do not survive one)."""
        with self._start_lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="prediction-store", daemon=True)
            self._thread.start()
            atexit.register(self.close)

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is queued (best effort, within ``timeout``) and stop the thread."""
        t = self._thread
        if t is None or self._pid != os.getpid():
            return
        self._stop.set()
        t.join(timeout)
        self._thread = None
        left = 0
        while True:
            try:
                left += item_size(self._q.get_nowait())
            except queue.Empty:
                break
        if left:
            self._dropped("shutdown", left)
        self._warn(force=True)  # whatever was dropped since the last warning

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written or dropped (tests, shutdown). True when empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._q.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False

    # ---- the thread ----------------------------------------------------------------------------------
    def _run(self) -> None:
        pending: list[Item] = []  # taken from the queue, not written yet
        rows = attempts = 0
        now = time.monotonic()
        next_flush, next_monitor, retry_at = now + self.flush_interval, now, 0.0
        while True:
            stopping = self._stop.is_set()
            if time.monotonic() >= next_monitor and not stopping:
                self._refresh_monitor()
                next_monitor = time.monotonic() + self.monitor_refresh
            while rows < self.batch_size:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                pending.append(item)
                rows += item_size(item)
            self._on_depth(self._q.qsize())
            now = time.monotonic()
            if pending and (stopping or (now >= retry_at and (rows >= self.batch_size or now >= next_flush))):
                ok = self._write(pending, rows)
                if ok or stopping or attempts + 1 >= self.max_attempts:
                    if not ok:
                        self._dropped("store_error", rows)
                    for _ in pending:
                        self._q.task_done()
                    pending, rows, attempts = [], 0, 0
                    next_flush = time.monotonic() + self.flush_interval
                else:  # retry later; meanwhile the queue buffers new predictions
                    attempts += 1
                    retry_at = next_flush = time.monotonic() + self.retry_interval
                self._warn()
                continue
            self._warn()
            if stopping and not pending and self._q.empty():
                return
            if not pending:  # wait for the first item of the next batch
                try:
                    item = self._q.get(timeout=max(0.01, min(next_monitor - time.monotonic(), 0.5)))
                except queue.Empty:
                    continue
                pending.append(item)
                rows += item_size(item)
                next_flush = time.monotonic() + self.flush_interval
            else:  # a partial batch: more items or the flush deadline
                self._stop.wait(min(0.05, max(0.0, next_flush - time.monotonic())))

    def _write(self, batch: list[Item], n: int) -> bool:
        try:
            out = []
            for item in batch:
                out.extend(item_rows(item))
            self.store.insert_predictions(out)
        except Exception as e:  # any failure of the store: count, log (rate-limited), retry later  # noqa: BLE001
            self.stats["failures"] += 1
            self._last_error = _describe(e) if isinstance(e, sa.exc.SQLAlchemyError) else \
                f"{type(e).__name__}: {str(e)[:300]}"
            if self.healthy:
                log.warning("prediction store write failed; predictions are still answered, records are buffered "
                            "and dropped when the buffer is full",
                            extra={"error.type": type(e).__name__, "error.message": self._last_error,
                                   "store.url": redact_url(self.store.url)})
            self.healthy = False
            return False
        if not self.healthy:
            log.warning("prediction store writes recovered", extra={"store.url": redact_url(self.store.url)})
        self.healthy = True
        self.stats["written"] += n
        self.stats["batches"] += 1
        self._on_written(n)
        return True

    def _refresh_monitor(self) -> None:
        try:
            latest = self.store.latest_monitor_run()
        except Exception as e:  # noqa: BLE001 (the store may be down; keep the last results)
            log.debug("monitor results not readable", extra={"error.type": type(e).__name__})
            return
        self.monitor_text = latest[1] if latest else ""

    def _dropped(self, reason: str, n: int) -> None:
        self._drops[reason] = self._drops.get(reason, 0) + n
        self.stats["dropped"] += n
        with contextlib.suppress(Exception):  # metrics must never fail a request
            self._on_dropped(reason, n)

    def _warn(self, force: bool = False) -> None:
        if not self._drops:
            return
        now = time.monotonic()
        if not force and now - self._last_warning < self.log_interval:
            return
        drops, self._drops = self._drops, {}
        self._last_warning = now
        log.warning("prediction records dropped", extra={
            "store.dropped": sum(drops.values()),
            "store.dropped_reasons": " ".join(f"{k}={v}" for k, v in sorted(drops.items())),
            "error.message": self._last_error, "store.url": redact_url(self.store.url)})
