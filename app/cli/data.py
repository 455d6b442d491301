"""``credit-score data``: obtain, generate and validate data sets."""

from __future__ import annotations

import json
import sys

import click

from app.cli.common import CliError, load_schema, resolve_data
from app.config import get_settings


@click.group("data")
def data_group() -> None:
    """Obtain, generate and validate data sets."""


@data_group.command("download")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="data/raw/uci_credit_default.csv",
              show_default=True, help="Where to write the UCI-coded CSV.")
@click.option("--url", default=None, help="Override the UCI archive URL.")
def data_download(output: str, url: str | None) -> None:
    """Fetch the UCI credit-default data and verify its sha256."""
    from app.datasets import UCI_URL, DataError, download_uci

    try:
        path = download_uci(output, url or UCI_URL)
    except DataError as e:
        raise CliError(str(e)) from None
    except OSError as e:
        raise CliError(f"download failed ({e}); ../shared/data/uci_credit_default.csv can be used as is") from None
    click.echo(f"wrote {path} (sha256 verified)")


@data_group.command("make-synthetic")
@click.option("--rows", "-n", type=click.IntRange(1, 5_000_000), default=30_000, show_default=True)
@click.option("--seed", type=int, default=None, help="Random seed [default: CREDIT_SCORE_SEED or 42].")
@click.option("--classes", type=click.Choice(["2", "3"]), default="2", show_default=True,
              help="2: default yes/no (~22 % bad); 3: rating Good/Standard/Poor.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="CSV or .parquet file.")
def data_make_synthetic(rows: int, seed: int | None, classes: str, output: str) -> None:
    """Generate the seeded synthetic data set with the UCI schema."""
    from tqdm import tqdm

    from app.datasets import write_synthetic

    seed = get_settings().seed if seed is None else seed
    try:
        with tqdm(total=rows, unit="row", unit_scale=True, file=sys.stderr, desc="synthetic") as bar:
            write_synthetic(output, rows, seed, int(classes), progress=bar.update)
    except OSError as e:
        raise CliError(f"cannot write {output}: {e.strerror or e}" + (f": {e.filename}" if e.filename else "")) \
            from None
    click.echo(f"wrote {rows} rows to {output}")


@data_group.command("validate")
@click.option("--data", "data_path", type=click.Path(), default=None, help="Data file (default: configured).")
@click.option("--schema", "schema_path", type=click.Path(), default=None, help="Schema YAML.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def data_validate(data_path: str | None, schema_path: str | None, as_json: bool) -> None:
    """Check a data set against its schema; exit 1 when it has errors."""
    from app.datasets import DataError, read_table
    from app.training.validate import validate

    settings = get_settings()
    schema = load_schema(schema_path, settings)
    path = resolve_data(data_path, settings)
    try:
        raw = read_table(path, schema)
    except DataError as e:
        raise CliError(str(e)) from None
    cfg = settings.training
    _, report = validate(raw, schema, cfg.cv_folds, cfg.holdout_fraction)
    click.echo(json.dumps(report.to_dict(), indent=2, default=str) if as_json else report.render())
    if not report.ok:
        sys.exit(1)
