"""``credit-score bootstrap`` (``make run``): data and a champion on a fresh machine."""

from __future__ import annotations

import click

from app.cli.common import CliError, open_registry
from app.cli.train import train_command
from app.config import get_settings


@click.command("bootstrap")
def bootstrap_command() -> None:
    """Make the default data if none is configured and train a model if none is registered."""
    settings = get_settings()
    reg = open_registry()
    champion = reg.alias_version("champion")
    if champion is not None:
        click.echo(f"champion is version {champion} of {settings.model_name} ({settings.tracking_uri})")
        return
    ctx = click.get_current_context()
    ctx.invoke(train_command, config_path=None, data_path=None, schema_path=None, promote="auto", as_json=False,
               quiet=False)
    champion = reg.alias_version("champion")
    if champion is None:
        raise CliError("training finished without a champion (see the gate result above)")
    click.echo(f"champion is version {champion}: {reg.bundle_path(champion)}")
