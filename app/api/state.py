"""What the blueprints share in one process: settings, the model manager, validators, secrets, job runner."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from app.api.contracts.requests import RequestContracts
from app.config import Settings
from app.schema import DatasetSchema
from app.serving.reload import ModelManager
from app.serving.validation import ApplicantModels

log = logging.getLogger("credit_score.api")


@dataclass
class ServiceState:
    settings: Settings
    manager: ModelManager
    secrets: Any = None  # app.secrets.SecretProvider, or None: the admin token comes from settings
    info_labels: set[tuple[str, ...]] = field(default_factory=set)  # model_info gauge labels last exported
    store: Any = None  # app.monitoring.store.PredictionStore, or None when the store is disabled
    writer: Any = None  # app.monitoring.store.StoreWriter: predictions leave the request path through it
    _validators: dict[str, ApplicantModels] = field(default_factory=dict)
    _contracts: dict[str, RequestContracts] = field(default_factory=dict)
    _fallback_schema: DatasetSchema | None = None

    @classmethod
    def create(cls, settings: Settings, manager: ModelManager | None = None, secrets: Any = None) -> ServiceState:
        from app.monitoring.metrics import metrics

        m = metrics()

        def on_event(kind: str, alias: str, version: str) -> None:
            m.reloads.labels(alias=alias, outcome=kind).inc()

        manager = manager or ModelManager(settings, on_event=on_event)
        store, writer = _store(settings, m, secrets)
        return cls(settings=settings, manager=manager, secrets=secrets, store=store, writer=writer)

    def validator(self, schema: DatasetSchema) -> ApplicantModels:
        """Request models for a schema, built once per schema hash (a reload may bring another schema)."""
        key = schema.sha256
        v = self._validators.get(key)
        if v is None:
            v = ApplicantModels(schema, self.settings.extra_fields)
            self._validators[key] = v
        return v

    def contracts(self, schema: DatasetSchema) -> RequestContracts:
        """The request models that embed this schema's applicant (batch, feedback), built once per schema."""
        c = self._contracts.get(schema.sha256)
        if c is None:
            c = RequestContracts(self.validator(schema), self.settings.max_batch_rows, self.settings.extra_fields)
            self._contracts[schema.sha256] = c
        return c

    def schema(self) -> DatasetSchema:
        """The schema the API documents: the champion's, else the configured one."""
        champ = self.manager.snapshot().champion
        if champ is not None:
            return champ.schema
        if self._fallback_schema is None:
            self._fallback_schema = DatasetSchema.load(self.settings.schema_path)
        return self._fallback_schema

    def admin_token(self) -> str | None:
        if self.secrets is not None:
            return self.secrets.get("admin_token")
        tok = self.settings.admin_token
        return tok.get_secret_value() if tok is not None else None

    def feedback_tokens(self) -> list[str]:
        """Tokens accepted on /feedback: the feedback token and the admin token."""
        if self.secrets is not None:
            toks = [self.secrets.get("feedback_token"), self.secrets.get("admin_token")]
        else:
            toks = [t.get_secret_value() if t is not None else None
                    for t in (self.settings.feedback_token, self.settings.admin_token)]
        return [t for t in toks if t]


def _store(settings: Settings, m, secrets: Any = None) -> tuple[Any, Any]:
    """The prediction store and its writer (no I/O here: the writer's thread connects on first use).
    An explicit CREDIT_SCORE_STORE_URL wins; else the secret ``database_url``; else the settings' default."""
    url = settings.prediction_store_url
    if settings.store_url is None and secrets is not None:
        try:
            url = secrets.get("database_url") or url
        except Exception:  # noqa: BLE001 (the provider fails closed elsewhere; the default store still works)
            log.warning("database_url could not be read from the secret provider; using %s", "the default store")
    if url is None:
        return None, None
    from app.monitoring.store import PredictionStore, StoreWriter

    store = PredictionStore(url)
    writer = StoreWriter(store, queue_size=settings.store_queue_size, batch_size=settings.store_batch_size,
                         flush_interval=settings.store_flush_interval, retry_interval=settings.store_retry_interval,
                         monitor_refresh=settings.monitor_metrics_refresh, on_written=m.store_written.inc,
                         on_dropped=lambda reason, n: m.store_dropped.labels(reason=reason).inc(n),
                         on_depth=m.store_queue.set)
    return store, writer


def state() -> ServiceState:
    return current_app.extensions["credit_score"]
