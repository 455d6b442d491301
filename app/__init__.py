"""credit-score-mlops: training, registry and serving for credit-risk models.

Importing this package does no work: no directories, no tracking URI, no logging set-up. The Flask
application is built by :func:`create_app` (gunicorn: ``app:create_app()``).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def create_app(test_config: dict[str, Any] | None = None, *, manager=None, secrets=None, start_reload: bool = True):
    """The Flask application factory.

    Settings come from their defaults, then the environment (``CREDIT_SCORE_*``), then ``test_config``
    (keys of :class:`app.config.Settings`). ``manager`` replaces the registry-backed model manager and
    ``secrets`` the secret provider (tests); ``start_reload=False`` skips the alias-polling thread.
    """
    from flask import Flask

    from app.api import register_blueprints
    from app.api.state import ServiceState
    from app.config import Settings
    from app.monitoring.logging import configure_logging

    settings = Settings(**(test_config or {}))
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, JSON_SORT_KEYS=False)
    app.json.sort_keys = False
    state = ServiceState.create(settings, manager=manager, secrets=secrets)
    app.extensions["credit_score"] = state
    register_blueprints(app)
    state.manager.refresh()
    if start_reload:
        state.manager.start()
    return app
