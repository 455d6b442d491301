"""The background writer: predictions leave the request path through a bounded queue and one thread per process.

The request puts one :class:`PredictionRecord` on the queue without blocking (``put_nowait``); the thread turns
queued records into rows (:func:`record_rows`) and inserts them in batches. When the queue is full the prediction
is answered anyway and the record is dropped; when the store fails, the batch is retried a few times (the queue
buffers meanwhile) and then dropped. Every dropped record is counted (``on_dropped``, exported as
``credit_score_store_dropped_total{reason}``) and logged at most once per interval. The same thread keeps the
monitor's latest results fresh (:class:`MonitorResults`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from app.monitoring.store.monitor_cache import MonitorResults
from app.monitoring.store.prediction_store import PredictionStore, describe_error, redact_url
from app.monitoring.store.record import PredictionRecord, record_rows

log = logging.getLogger("credit_score.store")


class StoreWriter:
    """A bounded queue and one daemon thread per process that inserts queued predictions in batches.

    ``submit`` never blocks and never raises: a full queue drops the record (counted). The thread flushes when a
    batch is full or every ``flush_interval`` seconds; a failed batch is retried ``max_attempts`` times,
    ``retry_interval`` seconds apart, while the queue buffers new records; then it is dropped (counted). The same
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
        self.monitor = MonitorResults(store, monitor_refresh)
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
        self.healthy = True
        self.stats = {"written": 0, "dropped": 0, "batches": 0, "failures": 0}

    # ---- request path --------------------------------------------------------------------------------
    def submit(self, record: PredictionRecord) -> bool:
        """Queue one request's predictions; False (and counted) when the queue is full. Never blocks."""
        if self._pid != os.getpid():
            self.start()
        try:
            self._q.put_nowait(record)
            return True
        except queue.Full:
            self._dropped("queue_full", record.size)
            return False

    @property
    def monitor_text(self) -> str:
        """The latest monitor run's gauges (Prometheus text), "" until one exists."""
        return self.monitor.text

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
                left += self._q.get_nowait().size
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
        pending: list[PredictionRecord] = []  # taken from the queue, not written yet
        rows = attempts = 0
        now = time.monotonic()
        next_flush, retry_at = now + self.flush_interval, 0.0
        self.monitor.next_refresh = now  # due at once (again after a fork)
        while True:
            stopping = self._stop.is_set()
            if not stopping:
                self.monitor.refresh_if_due()
            while rows < self.batch_size:
                try:
                    record = self._q.get_nowait()
                except queue.Empty:
                    break
                pending.append(record)
                rows += record.size
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
            if not pending:  # wait for the first record of the next batch
                try:
                    record = self._q.get(timeout=max(0.01, min(self.monitor.next_refresh - time.monotonic(), 0.5)))
                except queue.Empty:
                    continue
                pending.append(record)
                rows += record.size
                next_flush = time.monotonic() + self.flush_interval
            else:  # a partial batch: more items or the flush deadline
                self._stop.wait(min(0.05, max(0.0, next_flush - time.monotonic())))

    def _write(self, batch: list[PredictionRecord], n: int) -> bool:
        try:
            out = []
            for record in batch:
                out.extend(record_rows(record))
            self.store.insert_predictions(out)
        except Exception as e:  # any failure of the store: count, log (rate-limited), retry later  # noqa: BLE001
            self.stats["failures"] += 1
            self._last_error = describe_error(e) if isinstance(e, sa.exc.SQLAlchemyError) else \
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
