"""credit-score-mlops: training, registry and serving for credit-risk models.

Importing this package does no work: no directories, no tracking URI, no logging set-up. The Flask
application is built by :func:`create_app` (gunicorn: ``app:create_app()``).
"""

from __future__ import annotations

import functools
from typing import Any

from app.version import __version__

__all__ = ["__version__", "create_app"]


def create_app(test_config: dict[str, Any] | None = None, *, manager=None, secrets=None, start_reload: bool = True):
    """The Flask application factory.

    Settings come from their defaults, then the environment (``CREDIT_SCORE_*``), then ``test_config``
    (keys of :class:`app.config.Settings`). ``manager`` replaces the registry-backed model manager and
    ``secrets`` the secret provider (tests); ``start_reload=False`` skips the alias-polling thread. With a
    secret provider, the MLflow user it holds (the read-only one) is handed to MLflow's client before every
    registry check (:mod:`app.secrets.mlflow_credentials`).
    """
    from flask import Flask

    from app.api import register_blueprints
    from app.api.json_provider import OrjsonProvider
    from app.api.state import ServiceState
    from app.config import Settings
    from app.monitoring.logging import configure_logging
    from app.secrets.mlflow_credentials import export_mlflow_credentials

    settings = Settings(**(test_config or {}))
    configure_logging(settings.log_level)
    if secrets is None:
        secrets = _vault_provider()
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, JSON_SORT_KEYS=False)
    app.json = OrjsonProvider(app)
    app.json.sort_keys = False
    state = ServiceState.create(settings, manager=manager, secrets=secrets)
    if secrets is not None:  # the registry's read-only user, from Vault, before every alias check (rotation)
        state.manager.before_check = functools.partial(export_mlflow_credentials, secrets)
    app.extensions["credit_score"] = state
    register_blueprints(app)
    state.manager.boot()
    if start_reload:
        state.manager.start()
    return app


def _vault_provider():
    """The Vault secret provider when Vault is configured or in production; None otherwise (dev: settings).

    In production an unreachable Vault fails closed here: SecretsUnavailable stops the worker from booting.
    Secret values are redacted from every log line from then on.
    """
    import atexit
    import logging

    from app.secrets import SecretRedactingFilter, VaultSettings, build_provider

    vs = VaultSettings.from_env()
    if vs.auth == "none" and not vs.production:
        return None
    provider = build_provider(vs)
    provider.check()
    redactor = SecretRedactingFilter(provider)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
    atexit.register(provider.close)
    return provider
