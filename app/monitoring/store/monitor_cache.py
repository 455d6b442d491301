"""The monitor's latest results, cached in each serving process.

The monitor job writes its gauges (Prometheus text) to ``monitor_runs``; the service exposes the latest run on
/metrics, so Prometheus scrapes the monitor's results with the service. Each process keeps the text here and
re-reads it from the store at most every ``refresh`` seconds (on the store writer's thread, never in a request).
"""

from __future__ import annotations

import logging
import time

from app.monitoring.store.prediction_store import PredictionStore

log = logging.getLogger("credit_score.store")


class MonitorResults:
    """The latest monitor run's gauges, ``""`` until one exists; the last good text is kept while the store is
    down."""

    def __init__(self, store: PredictionStore, refresh: float = 15.0):
        self.store = store
        self.refresh = refresh
        self.text = ""
        self.next_refresh = 0.0  # time.monotonic() when the next read is due; 0: at once

    def refresh_if_due(self) -> None:
        if time.monotonic() < self.next_refresh:
            return
        self.read()
        self.next_refresh = time.monotonic() + self.refresh

    def read(self) -> None:
        try:
            latest = self.store.latest_monitor_run()
        except Exception as e:  # noqa: BLE001 (the store may be down; keep the last results)
            log.debug("monitor results not readable", extra={"error.type": type(e).__name__})
            return
        self.text = latest[1] if latest else ""
