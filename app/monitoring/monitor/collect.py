"""Stage 1, collect: the registered models and the prediction store's rows for one run."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.config import Settings
from app.monitoring.monitor.results import Collected, Models, MonitorError
from app.monitoring.store import PredictionStore, redact_url


def load_models(settings: Settings, registry=None) -> Models:
    """Champion and challenger: the champion's schema, each version's reference profile and training time."""
    from app.registry import CHALLENGER, CHAMPION, Registry

    reg = registry or Registry(settings)
    champion, challenger = reg.alias_version(CHAMPION), reg.alias_version(CHALLENGER)
    if champion is None:
        raise MonitorError(f"no champion registered for {settings.model_name}; nothing to monitor")
    models = Models(champion=champion, challenger=challenger, schema=None)
    for version in (champion, challenger):
        if version is None:
            continue
        info, bundle = reg.load(version)
        if version == champion:
            models.schema = bundle.schema
        models.profiles[version] = bundle.reference_profile
        models.trained_at[version] = info.tags.get("trained_at") or bundle.meta.get("trained_at") or ""
    return models


def open_store(settings: Settings, store: PredictionStore | None = None) -> PredictionStore:
    """The given store, else the configured one; MonitorError when the store is disabled."""
    if store is not None:
        return store
    url = settings.prediction_store_url
    if url is None:
        raise MonitorError("the prediction store is disabled (CREDIT_SCORE_STORE_URL=none): nothing to monitor")
    return PredictionStore(url)


def collect(settings: Settings, now: datetime, store: PredictionStore | None = None, registry=None) -> Collected:
    """Read what the run works on; MonitorError when the store is disabled or unreachable or nothing is
    registered."""
    store = open_store(settings, store)
    models = load_models(settings, registry)
    until = now + timedelta(seconds=1)
    try:
        rows = store.read_predictions(now - timedelta(hours=settings.monitor_window_hours), until,
                                      limit=settings.monitor_max_rows)
        labelled = store.read_predictions(now - timedelta(days=settings.monitor_performance_days), until,
                                          labelled_only=True, limit=settings.monitor_max_rows)
    except Exception as e:
        raise MonitorError(f"prediction store {redact_url(store.url)} is unavailable: {type(e).__name__}: "
                           f"{str(getattr(e, 'orig', e)).splitlines()[0][:300]}") from e
    return Collected(now=now, store=store, models=models, rows=rows, labelled=labelled)
