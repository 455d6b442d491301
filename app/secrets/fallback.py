"""The declared environment fallback: which variables may hold a secret when Vault does not provide it."""

from __future__ import annotations

import os

SECRET_NAMES = ("admin_token", "feedback_token", "database_url", "mlflow_username", "mlflow_password")

# environment variables consulted for a name when the fallback is allowed (first non-empty wins)
_EXTRA_ENV = {
    "mlflow_username": ("MLFLOW_TRACKING_USERNAME",),
    "mlflow_password": ("MLFLOW_TRACKING_PASSWORD",),
}


def env_names(name: str) -> tuple[str, ...]:
    """Environment variables that may hold ``name`` when the fallback is allowed."""
    return (f"CREDIT_SCORE_{name.upper()}", *_EXTRA_ENV.get(name, ()))


def from_environment(name: str) -> tuple[str, str] | None:
    """``(variable, value)`` of the first non-empty variable that may hold ``name``, else None."""
    for var in env_names(name):
        value = os.environ.get(var)
        if value:
            return var, value
    return None
