"""The service's and the commands' settings: one model composed of the concern groups in :mod:`app.config.groups`.

Read from the environment (prefix ``CREDIT_SCORE_``; nested keys use ``__``, e.g.
``CREDIT_SCORE_TRAINING__CV_FOLDS=3``); MLflow's own ``MLFLOW_TRACKING_URI`` wins over the embedded default (a
SQLite store under ``models/``). Paths are resolved against the working directory when relative. Nothing
happens at import time: call :func:`get_settings`.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from app.config.base import EnvSettings
from app.config.groups import (
    JobSettings,
    MonitorSettings,
    PathSettings,
    RegistrySettings,
    ServingSettings,
    StoreSettings,
)
from app.config.signing import SigningSettings


# listed last group first: pydantic collects fields from the last base on, so they keep this file's reading order
class Settings(EnvSettings, SigningSettings, MonitorSettings, StoreSettings, JobSettings, ServingSettings,
               RegistrySettings, PathSettings):
    """Runtime settings: every group's fields, flat (``settings.port``, ``settings.store_url``).

    Constructor keys are field names or their environment aliases; unknown keys raise. Environment variables
    with the prefix that name no setting are ignored (see :mod:`app.config.base`).
    """

    model_config = SettingsConfigDict(env_prefix="CREDIT_SCORE_", env_nested_delimiter="__", extra="forbid",
                                      populate_by_name=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
