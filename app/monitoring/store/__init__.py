"""The prediction store: every prediction, the outcomes observed later (feedback), and the monitor's results.

SQLAlchemy Core on any URL: a SQLite file is the embedded default (``<models_dir>/predictions.db``, WAL mode so
several gunicorn workers and the monitor job share it), PostgreSQL by URL (``postgresql+psycopg://...``).
``CREDIT_SCORE_STORE_URL=none`` disables the store.

Modules, one job each:
    ``tables``            the tables (SQLAlchemy Core)
    ``clock``             the stored time (naive UTC)
    ``record``            :class:`PredictionRecord`, the typed record from the API, and its rows (``record_rows``)
    ``prediction_store``  :class:`PredictionStore`: inserts, the feedback join, window reads, retention
    ``writer``            :class:`StoreWriter`: the bounded queue and background thread that write records
    ``monitor_cache``     :class:`MonitorResults`: the monitor's latest gauges, served on /metrics

Every name is importable from here, as it was when the store was one module. They load on first use: the API
builds records (``record`` needs numpy and orjson only) without paying for SQLAlchemy's import (~1 s here) when
the store is disabled.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.monitoring.store.clock import to_utc, utcnow
    from app.monitoring.store.monitor_cache import MonitorResults
    from app.monitoring.store.prediction_store import (
        FeedbackResult,
        PredictionStore,
        StoreUnavailable,
        describe_error,
        redact_url,
    )
    from app.monitoring.store.record import PredictionRecord, record_rows
    from app.monitoring.store.tables import (
        MAX_ID,
        PREDICTION_COLUMNS,
        feedback,
        metadata,
        monitor_runs,
        predictions,
    )
    from app.monitoring.store.writer import StoreWriter

    Item = PredictionRecord
    item_rows = record_rows
    _describe = describe_error

# name -> (module, attribute); the last three are the one-module store's names, kept for its callers
_EXPORTS: dict[str, tuple[str, str]] = {
    "utcnow": ("clock", "utcnow"), "to_utc": ("clock", "to_utc"),
    "MonitorResults": ("monitor_cache", "MonitorResults"),
    "FeedbackResult": ("prediction_store", "FeedbackResult"),
    "PredictionStore": ("prediction_store", "PredictionStore"),
    "StoreUnavailable": ("prediction_store", "StoreUnavailable"),
    "describe_error": ("prediction_store", "describe_error"), "redact_url": ("prediction_store", "redact_url"),
    "PredictionRecord": ("record", "PredictionRecord"), "record_rows": ("record", "record_rows"),
    "MAX_ID": ("tables", "MAX_ID"), "PREDICTION_COLUMNS": ("tables", "PREDICTION_COLUMNS"),
    "feedback": ("tables", "feedback"), "metadata": ("tables", "metadata"),
    "monitor_runs": ("tables", "monitor_runs"), "predictions": ("tables", "predictions"),
    "StoreWriter": ("writer", "StoreWriter"),
    "Item": ("record", "PredictionRecord"), "item_rows": ("record", "record_rows"),
    "_describe": ("prediction_store", "describe_error"),
}

__all__ = [  # the public names of _EXPORTS (a literal list, so linters see what is exported)
    "FeedbackResult", "Item", "MAX_ID", "MonitorResults", "PREDICTION_COLUMNS", "PredictionRecord", "PredictionStore",
    "StoreUnavailable", "StoreWriter", "describe_error", "feedback", "item_rows", "metadata", "monitor_runs",
    "predictions", "record_rows", "redact_url", "to_utc", "utcnow",
]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value  # once: later lookups find it directly
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
