"""The prediction store's tables: defined in :mod:`app.sources.store_tables` (below training and monitoring, so
that training reads labelled production rows without importing monitoring code), re-exported here for the
store's modules and old import paths."""

from __future__ import annotations

from app.sources.store_tables import MAX_ID, PREDICTION_COLUMNS, feedback, metadata, monitor_runs, predictions

__all__ = ["MAX_ID", "PREDICTION_COLUMNS", "feedback", "metadata", "monitor_runs", "predictions"]
