"""``credit-score predict``: score a file with a registered model (batch), in the format training accepted."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from app.cli.common import CliError, open_registry

SHOWN_REJECTS = 10  # rejected rows printed on stderr when there is no --rejects file


@click.command("predict")
@click.option("--input", "-i", "input_path", type=click.Path(exists=True, dir_okay=False), required=True,
              help="CSV or Parquet with the schema's column names or their source names (as for training); "
                   "the target column may be present (ignored unless --evaluate).")
@click.option("--output", "-o", "output_path", type=click.Path(dir_okay=False), required=True,
              help="CSV, or Parquet when the name ends in .parquet: the input's columns, then prediction and "
                   "probability.")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False), default=None,
              help="Write the rows that fail the schema here (CSV: row, reason, the row's values; only the header "
                   "when every row passes).")
@click.option("--evaluate", is_flag=True, help="Use the input's target column to print holdout metrics.")
@click.option("--model", "ref", default="champion", show_default=True, help="Version number or alias.")
@click.option("--chunk-size", type=click.IntRange(1, 10_000_000), default=100_000, show_default=True)
@click.option("--quiet", "-q", is_flag=True)
def predict_command(input_path: str, output_path: str, rejects_path: str | None, evaluate: bool, ref: str,
                    chunk_size: int, quiet: bool) -> None:
    """Score a file with a registered model, chunk by chunk.

    Rows that fail the model's schema are left out of the output and listed with their row number and reason
    (in --rejects FILE, else the first ones on stderr); the other rows are scored.

    Exit codes: 0 every row scored; 4 some rows rejected (the rest scored); 1 the file cannot be scored (missing
    model, unreadable or empty file, a column missing); 2 bad arguments.
    """
    from app.batch import BatchInputError, score_file
    from app.bundle import BundleError
    from app.exit_codes import EXIT_REJECTED
    from app.registry import RegistryError
    from app.serving.batch import write_rejects

    try:
        _, bundle = open_registry().load(ref)
        result = score_file(bundle, Path(input_path), Path(output_path), chunk_size, progress=not quiet,
                            evaluate=evaluate)
    except (RegistryError, BundleError, BatchInputError) as e:
        raise CliError(str(e)) from None
    except OSError as e:
        raise CliError(f"cannot write {output_path}: {e.strerror or e}") from None
    if result.target_column is not None and not evaluate:
        click.echo(f"the target column {result.target_column!r} is in the input: ignored for scoring "
                   f"(--evaluate uses it for metrics)", err=True)
    click.echo(f"scored {result.scored} of {result.rows_in} rows -> {output_path}")
    if evaluate:
        _print_metrics(bundle, result)
    if rejects_path:  # always written (the header alone when no row failed): no stale file from an earlier run
        write_rejects(result.rejects, Path(rejects_path))
    if result.rejects:
        n = len(result.rejects)
        if rejects_path:
            click.echo(f"rejected {n} row(s) that fail the schema -> {rejects_path}", err=True)
        else:
            click.echo(f"rejected {n} row(s) that fail the schema (--rejects FILE lists them all):", err=True)
            for r in result.rejects[:SHOWN_REJECTS]:
                click.echo(f"  row {r.row}: {r.reason}", err=True)
        sys.exit(EXIT_REJECTED)


def _print_metrics(bundle, result) -> None:
    """Holdout metrics of the scored rows against the input's target (--evaluate)."""
    import numpy as np

    from app.training.metrics import compute_metrics

    if result.target_column is None:
        raise CliError(f"--evaluate needs the target column {bundle.schema.target.name!r}"
                       + (f" (or {bundle.schema.target.source!r})" if bundle.schema.target.source else "")
                       + " in the input")
    y = np.concatenate(result.y_true) if result.y_true else np.zeros(0, dtype=np.int64)
    if result.target_unusable:
        click.echo(f"{result.target_unusable} scored row(s) have no valid target value: left out of the metrics",
                   err=True)
    if y.size == 0:
        raise CliError("--evaluate: no scored row has a valid target value")
    proba = np.concatenate(result.proba)
    m = compute_metrics(y, proba, bundle.bad_index, bundle.threshold, bundle.classes)
    shown = ["roc_auc", "pr_auc", "ks", "gini", "f1_macro", "f1_bad", "recall_bad", "precision_bad", "accuracy",
             "balanced_accuracy", "brier"]
    click.echo(f"evaluation on {y.size} row(s): " + ", ".join(f"{k} {m[k]:.4f}" for k in shown if k in m))
