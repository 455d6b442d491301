"""What every settings model shares: the project root, and reading the environment by exact variable names.

Two rules hold for :class:`app.config.Settings` and :class:`app.config.VaultSettings` alike:

* Constructor keys are checked: a field's name and its alias (the environment variable it reads, where that
  differs) are both accepted, anything else raises (``extra="forbid"``). ``Settings(mlflow_tracking_uri=...)``
  and ``Settings(MLFLOW_TRACKING_URI=...)`` mean the same thing; ``Settings(mlflow_uri=...)`` is an error.
* The environment is read by the declared names only: ``<prefix><FIELD>`` for a field without an alias, the
  alias alone for a field with one (``MLFLOW_TRACKING_URI``, never also ``CREDIT_SCORE_MLFLOW_TRACKING_URI``).
  Other variables, including unknown ones with our prefix (``CREDIT_SCORE_JOB_ID``, ``CREDIT_SCORE_SEED_*``,
  the secret fallbacks), are not settings and are left alone: they never make the application fail to start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Self

from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# the mapping a `from_env(environ)` call reads instead of os.environ (None: os.environ)
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("credit_score_environ", default=None)


class ExactEnvSource(EnvSettingsSource):
    """The environment source, restricted to each field's declared variable, reading ``environ`` if given.

    pydantic-settings also reads ``<prefix><field name>`` for an aliased field once names are accepted in the
    constructor (``populate_by_name``); this source drops that second spelling, so every setting keeps exactly
    one environment variable.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        if self._environ is None:
            return super()._load_env_vars()
        out: dict[str, str | None] = {}
        for key, value in self._environ.items():
            if self.env_ignore_empty and value == "":
                continue
            out[key if self.case_sensitive else key.lower()] = value
        return out

    def _extract_field_info(self, field: Any, field_name: str, *args: Any,
                            **kwargs: Any) -> list[tuple[str, str, bool]]:
        info = super()._extract_field_info(field, field_name, *args, **kwargs)
        if field.validation_alias is not None:
            info = [entry for entry in info if entry[0] != field_name] or info
        return info


class EnvSettings(BaseSettings):
    """Base of the settings models: constructor values, then the environment (exact names); nothing else."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, ExactEnvSource(settings_cls, environ=_ENVIRON.get())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **values: Any) -> Self:
        """The settings read from ``environ`` (default ``os.environ``) instead of the process environment."""
        with reading(os.environ if environ is None else environ):
            return cls(**values)


@contextmanager
def reading(environ: Mapping[str, str]) -> Iterator[None]:
    """Settings built inside this block read ``environ`` instead of ``os.environ``."""
    token = _ENVIRON.set(environ)
    try:
        yield
    finally:
        _ENVIRON.reset(token)
