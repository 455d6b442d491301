"""``credit-score predict``: score a file with a registered model (batch)."""

from __future__ import annotations

from pathlib import Path

import click

from app.cli.common import CliError, open_registry


@click.command("predict")
@click.option("--input", "-i", "input_path", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--output", "-o", "output_path", type=click.Path(dir_okay=False), required=True,
              help="CSV, or Parquet when the name ends in .parquet.")
@click.option("--model", "ref", default="champion", show_default=True, help="Version number or alias.")
@click.option("--chunk-size", type=click.IntRange(1, 10_000_000), default=100_000, show_default=True)
@click.option("--quiet", "-q", is_flag=True)
def predict_command(input_path: str, output_path: str, ref: str, chunk_size: int, quiet: bool) -> None:
    """Score a file with a registered model, chunk by chunk."""
    from app.batch import BatchInputError, score_file
    from app.bundle import BundleError
    from app.registry import RegistryError

    try:
        _, bundle = open_registry().load(ref)
        n = score_file(bundle, Path(input_path), Path(output_path), chunk_size, progress=not quiet)
    except (RegistryError, BundleError, BatchInputError) as e:
        raise CliError(str(e)) from None
    click.echo(f"scored {n} rows -> {output_path}")
