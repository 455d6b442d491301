"""Prometheus metrics (prometheus_client), aggregated across gunicorn workers in multiprocess mode.

Multiprocess mode is on when ``PROMETHEUS_MULTIPROC_DIR`` is set in the environment before the first metric is
created (``credit-score serve`` sets it and empties the directory). Metrics are created once per process,
on first use, never at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as mp

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PROBA_BUCKETS = tuple(round(i / 20, 2) for i in range(1, 21))


@dataclass(frozen=True)
class Metrics:
    requests: Counter
    latency: Histogram
    predictions: Counter
    probability: Histogram
    model_info: Gauge
    model_loaded: Gauge
    reloads: Counter
    retrains: Counter
    rejected: Counter
    store_written: Counter
    store_dropped: Counter
    store_queue: Gauge
    feedback: Counter


RETRAIN_OUTCOMES = ("started", "rejected_busy", "succeeded", "gate_failed", "failed")
DROP_REASONS = ("queue_full", "store_error", "shutdown")


@lru_cache(maxsize=1)
def metrics() -> Metrics:
    m = _create()
    # series that alerts take rate()/increase() of exist from the start at 0, so their first increment counts
    for outcome in RETRAIN_OUTCOMES:
        m.retrains.labels(outcome=outcome)
    for reason in DROP_REASONS:
        m.store_dropped.labels(reason=reason)
    return m


def _create() -> Metrics:
    g_mode = "liveall" if multiprocess_enabled() else None
    kw = {"multiprocess_mode": g_mode} if g_mode else {}
    return Metrics(
        requests=Counter("credit_score_http_requests_total", "HTTP requests", ["endpoint", "method", "status"]),
        latency=Histogram("credit_score_http_request_duration_seconds", "Request latency",
                          ["endpoint", "method"], buckets=LATENCY_BUCKETS),
        predictions=Counter("credit_score_predictions_total", "Predictions served",
                            ["model_version", "variant", "predicted_class"]),
        probability=Histogram("credit_score_prediction_probability", "Predicted probability of the bad class",
                              ["variant"], buckets=PROBA_BUCKETS),
        model_info=Gauge("credit_score_model_info", "Loaded model (value 1) with its version and alias",
                         ["alias", "version", "classifier", "sampler"], **kw),
        model_loaded=Gauge("credit_score_model_loaded", "1 when a verified champion is loaded", **kw),
        reloads=Counter("credit_score_model_reloads_total", "Model (re)loads by outcome", ["alias", "outcome"]),
        retrains=Counter("credit_score_retrain_jobs_total", "Retrain jobs by outcome", ["outcome"]),
        rejected=Counter("credit_score_rejected_requests_total", "Requests rejected by validation",
                         ["endpoint", "status"]),
        store_written=Counter("credit_score_store_written_total", "Prediction records written to the store"),
        store_dropped=Counter("credit_score_store_dropped_total",
                              "Prediction records not written (queue_full, store_error, shutdown)", ["reason"]),
        store_queue=Gauge("credit_score_store_queue_depth", "Prediction store items waiting to be written",
                          **({"multiprocess_mode": "livesum"} if g_mode else {})),
        feedback=Counter("credit_score_feedback_total", "Outcomes received on /feedback by result", ["result"]),
    )


def child(metric, *values: str):
    """``metric.labels(*values)``, remembered per metric: ``labels`` checks and locks on every call (~5 us a
    series here, four series a prediction); the request path calls this instead. Only for series that are
    never removed (``remove``/``clear`` would leave a stale child here)."""
    cache = metric.__dict__.setdefault("_credit_score_children", {})
    c = cache.get(values)
    if c is None:
        c = cache[values] = metric.labels(*values)
    return c


def observe_many(hist, values) -> None:
    """``hist.observe(v)`` for every value, in one increment per bucket: a 10,000-row batch otherwise spends
    ~60 ms in per-value observes. Uses the client's bucket bounds and values (``_upper_bounds``, ``_buckets``,
    ``_sum``, as its own ``observe`` does); a client without them gets the per-value loop."""
    buckets, bounds, total = (getattr(hist, a, None) for a in ("_buckets", "_upper_bounds", "_sum"))
    v = np.asarray(values, dtype=float)
    if buckets is None or bounds is None or total is None or len(v) < 16:
        for x in v:
            hist.observe(float(x))
        return
    hist._raise_if_not_observable()  # noqa: SLF001 (what observe checks first)
    total.inc(float(v.sum()))
    idx = np.searchsorted(np.asarray(bounds), v, side="left")  # the first bound >= v, as observe's loop
    counts = np.bincount(idx[idx < len(bounds)], minlength=len(bounds))  # NaN: no bucket, as observe
    for i in np.flatnonzero(counts):
        buckets[i].inc(int(counts[i]))


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def exposition() -> bytes:
    """The text exposition: all workers aggregated in multiprocess mode, else this process."""
    if multiprocess_enabled():
        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)


def mark_worker_dead(pid: int) -> None:
    if multiprocess_enabled():
        mp.mark_process_dead(pid)
