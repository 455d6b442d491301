"""What the blueprints share in one process: settings, the model manager, validators, secrets, job runner."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

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
    _validators: dict[str, ApplicantModels] = field(default_factory=dict)
    _fallback_schema: DatasetSchema | None = None

    @classmethod
    def create(cls, settings: Settings, manager: ModelManager | None = None, secrets: Any = None) -> ServiceState:
        from app.monitoring.metrics import metrics

        m = metrics()

        def on_event(kind: str, alias: str, version: str) -> None:
            m.reloads.labels(alias=alias, outcome=kind).inc()

        manager = manager or ModelManager(settings, on_event=on_event)
        return cls(settings=settings, manager=manager, secrets=secrets)

    def validator(self, schema: DatasetSchema) -> ApplicantModels:
        """Request models for a schema, built once per schema hash (a reload may bring another schema)."""
        key = schema.sha256
        v = self._validators.get(key)
        if v is None:
            v = ApplicantModels(schema, self.settings.extra_fields)
            self._validators[key] = v
        return v

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


def state() -> ServiceState:
    return current_app.extensions["credit_score"]
