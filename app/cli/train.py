"""``credit-score train``: validate, cross-validate the grid, gate, report and register a model."""

from __future__ import annotations

import json
import sys

import click

from app.cli.common import EXIT_USAGE, CliError, first_line, json_default, load_schema, resolve_data
from app.config import get_settings, load_training_config


@click.command("train")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Training config YAML (keys of app.config.TrainingConfig).")
@click.option("--data", "data_path", type=click.Path(), default=None,
              help="CSV/Parquet with the schema's names or the UCI codes X1..X23,Y: the base data of the file "
                   "sources that name no path (data.sources in the training config).")
@click.option("--schema", "schema_path", type=click.Path(), default=None, help="Schema YAML.")
@click.option("--promote", type=click.Choice(["auto", "challenger", "champion", "none"]), default="auto",
              show_default=True,
              help="Alias for a model that passes the gate: auto/challenger = challenger (champion when there is "
                   "none yet), champion = replace the champion, none = register only.")
@click.option("--no-register", "no_register", is_flag=True,
              help="Train, gate and report, keep the bundle in a local directory, write nothing to the registry "
                   "(pull-request and branch builds).")
@click.option("--summary-file", type=click.Path(dir_okay=False), default=None,
              help="Also write the run's summary (version, alias, gate, selection, holdout) as one JSON line of at "
                   "most 4 KiB here (Kubernetes: /dev/termination-log, which the retrain runner reads).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train_command(config_path, data_path, schema_path, promote, no_register, summary_file, as_json,
                  quiet) -> None:
    """Validate, cross-validate the grid, gate, report and register a model."""
    from app.datasets import DataError
    from app.exit_codes import EXIT_DATA, EXIT_GATE
    from app.training.train import train as run_training
    from app.training.validate import ValidationFailed

    settings = get_settings()
    try:
        cfg = load_training_config(config_path, settings.training)
    except ValueError as e:
        raise CliError(f"invalid training config {config_path}: {first_line(e)}", EXIT_USAGE) from None
    schema = load_schema(schema_path, settings)
    # the base data of file sources that name no path of their own (cfg.data.sources)
    path = resolve_data(data_path, settings, quiet) if data_path or any(
        s.kind == "file" and not s.path for s in cfg.data.sources) else None
    try:
        result = run_training(settings, cfg, path, schema, promote=promote, progress=not quiet,
                              register=not no_register)
    except ValidationFailed as e:
        raise CliError(f"{e}\nnothing was registered", EXIT_DATA) from None
    except DataError as e:
        raise CliError(f"{e}; nothing was registered", EXIT_DATA) from None
    if summary_file:
        from app.jobs.summary import format_train_summary

        with open(summary_file, "w") as f:
            f.write(format_train_summary(result.to_json()))
    if as_json:
        click.echo(json.dumps(result.to_json(), default=json_default))
    else:
        where = f"version {result.version} ({result.alias or 'not promoted'})" if result.version else \
            f"not registered (bundle {result.bundle})"
        click.echo(f"{where}: {result.selected['label']}; "
                   f"holdout roc_auc {result.holdout.get('roc_auc', float('nan')):.4f}, "
                   f"f1_macro {result.holdout['f1_macro']:.4f}; report {result.report}")
    if not result.gate.passed:
        click.echo("quality gate failed: " + "; ".join(result.gate.reasons), err=True)
        sys.exit(EXIT_GATE)
