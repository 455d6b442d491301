"""What the commands share: the one-line error, the exit code of bad arguments, schema, data and registry."""

from __future__ import annotations

from pathlib import Path

import click

from app.config import Settings, get_settings
from app.exit_codes import EXIT_USAGE  # noqa: F401 (the exit code of bad arguments; app.cli re-exports it)


class CliError(click.ClickException):
    """A failure the user can act on: one line, no traceback."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def load_schema(path: str | None, settings: Settings):
    """The schema at ``path``, else the configured one; CliError listing every problem when it is missing or
    invalid (app.schema_check)."""
    from app.schema_check import check_schema_file

    where = path or settings.schema_path
    schema, problems = check_schema_file(where)
    if schema is None:
        if len(problems) == 1 and problems[0].startswith("schema file not found"):
            raise CliError(problems[0])
        raise CliError(f"invalid schema {where}: " + "; ".join(problems)
                       + f" (`credit-score schema check {where}` explains them)")
    return schema


def resolve_data(data: str | None, settings: Settings, quiet: bool = False) -> Path:
    """--data, else CREDIT_SCORE_DATA, else the embedded synthetic default (made on first use)."""
    if data:
        return Path(data)
    if settings.data:
        return Path(settings.data)
    path = settings.default_data
    if not path.exists():
        from app.datasets import write_synthetic

        if not quiet:
            click.echo(f"no data configured: writing the embedded synthetic data set ({settings.default_data_rows} "
                       f"rows, seed {settings.seed}) to {path}", err=True)
        write_synthetic(path, settings.default_data_rows, settings.seed)
    return path


def use_registry_credentials(store: bool = False) -> None:
    """When Vault is configured (``CREDIT_SCORE_VAULT_AUTH`` other than ``none``), hand the MLflow user it holds
    to MLflow's client for this command (training and registry commands: the writer, by pointing
    ``mlflow_username``/``mlflow_password`` at its path with ``CREDIT_SCORE_VAULT_SECRETS``). Vault unavailable:
    a warning, and the command goes on with whatever MLflow variables it has (the server refuses it if none).
    ``store``: the command reads the prediction store (monitor, abtest): its URL too (:func:`export_store_url`)."""
    import logging

    from app.secrets import VaultSettings, build_provider, export_mlflow_credentials

    try:
        vs = VaultSettings.from_env()
    except ValueError:  # invalid Vault settings (pydantic's ValidationError too): `serve` reports them itself
        return
    if vs.auth == "none":
        return
    provider = build_provider(vs)
    try:
        if not export_mlflow_credentials(provider):
            logging.getLogger("credit_score.cli").warning("MLflow credentials unavailable from Vault")
        if store:
            export_store_url(provider)
    finally:
        provider.close()


def export_store_url(provider, environ=None) -> bool:
    """The prediction store's URL for a command that reads it, from the secret ``database_url`` as the service
    takes it (app/api/state.py), so that the monitor reads the database the workers write: written to
    ``CREDIT_SCORE_DATABASE_URL`` (a secret setting, redacted in logs) unless ``CREDIT_SCORE_STORE_URL`` or
    ``CREDIT_SCORE_DATABASE_URL`` is set already. True when it was written; the value is never logged."""
    import logging
    import os

    environ = os.environ if environ is None else environ
    if environ.get("CREDIT_SCORE_STORE_URL") is not None or environ.get("CREDIT_SCORE_DATABASE_URL"):
        return False
    try:
        url = provider.get("database_url")
    except Exception:  # noqa: BLE001 (the provider fails closed; the command reports the default store it uses)
        url = None
    if not url:
        logging.getLogger("credit_score.cli").warning(
            "database_url unavailable from Vault: the prediction store is the default (CREDIT_SCORE_STORE_URL)")
        return False
    environ["CREDIT_SCORE_DATABASE_URL"] = url
    get_settings.cache_clear()  # the settings read it
    return True


def open_registry():
    """The model registry of the configured settings."""
    from app.registry import Registry

    return Registry(get_settings())


def first_line(e: Exception) -> str:
    """An error message as one line of at most 400 characters."""
    return " ".join(str(e).split())[:400]


def json_default(o) -> str:
    """``json.dumps`` fallback: whatever JSON has no type for (paths, dates) as its string."""
    return str(o)
