"""``credit-score registry``: list, inspect, promote and roll back registered versions."""

from __future__ import annotations

import json

import click

from app.cli.common import EXIT_USAGE, CliError, open_registry


@click.group("registry")
def registry_group() -> None:
    """List, inspect, promote and roll back registered versions."""


@registry_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def registry_list(as_json: bool) -> None:
    """Every version with its aliases, classifier, sampler and gate result."""
    versions = open_registry().versions()
    if as_json:
        click.echo(json.dumps([v.to_dict() for v in versions], indent=2))
        return
    if not versions:
        click.echo("no versions registered")
        return
    for v in versions:
        t = v.tags
        click.echo(f"v{v.version:<4} {','.join(v.aliases) or '-':<20} {t.get('classifier', '?')}+"
                   f"{t.get('sampler', '?'):<18} gate={t.get('gate_passed', '?'):<5} "
                   f"trained {t.get('trained_at', '?')}")


@registry_group.command("show")
@click.argument("ref")
def registry_show(ref: str) -> None:
    """One version (number or alias) with all its lineage tags and its training data's sources (the MLflow
    datasets of its run: name, rows, window, digest), as JSON."""
    from app.registry import RegistryError

    registry = open_registry()
    try:
        info = registry.get(ref)
        datasets = registry.datasets(info.run_id)
    except RegistryError as e:
        raise CliError(str(e)) from None
    click.echo(json.dumps({**info.to_dict(), "datasets": datasets}, indent=2))


@registry_group.command("promote")
@click.argument("version")
@click.option("--alias", "-a", type=click.Choice(["champion", "challenger"]), required=True)
@click.option("--force", is_flag=True, help="Allow a version that failed the quality gate.")
@click.option("--expect-challenger", type=click.IntRange(min=1), default=None,
              help="Release use: promote VERSION to champion only while the challenger alias still points at this "
                   "version number (the one the build registered); refuse if the alias moved meanwhile.")
def registry_promote(version: str, alias: str, force: bool, expect_challenger: int | None) -> None:
    """Point an alias at a version."""
    from app.registry import CHAMPION, RegistryError

    if expect_challenger is not None:
        if alias != CHAMPION or force:
            raise CliError("--expect-challenger goes with --alias champion and without --force", EXIT_USAGE)
        if not version.isdigit():
            raise CliError(f"--expect-challenger needs a version number, not {version!r}", EXIT_USAGE)
    try:
        if expect_challenger is None:
            open_registry().promote(version, alias, force=force)
        elif not open_registry().promote_registered(version, expect_challenger):
            click.echo(f"{alias} already is v{version}")
            return
    except RegistryError as e:
        raise CliError(str(e)) from None
    click.echo(f"{alias} -> v{version}")


@registry_group.command("rollback")
def registry_rollback() -> None:
    """Move champion back to the previous champion."""
    from app.registry import RegistryError

    try:
        old, new = open_registry().rollback()
    except RegistryError as e:
        raise CliError(str(e)) from None
    click.echo(f"champion: v{old} -> v{new}")
