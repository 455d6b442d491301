"""The ``credit-score`` command: data, train, registry, predict (batch), monitor, abtest, serve and bootstrap.

Bad arguments print one line (``credit-score: error: ...``) and exit 2; data that fails validation exits 1,
a model that fails the quality gate exits 3. Progress goes to stderr; ``--json`` output to stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from app.config import Settings, get_settings, load_training_config
from app.exit_codes import EXIT_USAGE


class CliError(click.ClickException):
    """A failure the user can act on: one line, no traceback."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def _schema(path: str | None, settings: Settings):
    from app.schema import DatasetSchema

    try:
        return DatasetSchema.load(path or settings.schema_path)
    except FileNotFoundError as e:
        raise CliError(str(e)) from None
    except ValueError as e:
        raise CliError(f"invalid schema {path or settings.schema_path}: {str(e).splitlines()[0]}") from None


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="credit-score-mlops", prog_name="credit-score")
def cli() -> None:
    """Credit-risk models: data, training, registry and batch scoring."""


# ---- data ----------------------------------------------------------------------------------------------
@cli.group()
def data() -> None:
    """Obtain, generate and validate data sets."""


@data.command("download")
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


@data.command("make-synthetic")
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
    with tqdm(total=rows, unit="row", unit_scale=True, file=sys.stderr, desc="synthetic") as bar:
        write_synthetic(output, rows, seed, int(classes), progress=bar.update)
    click.echo(f"wrote {rows} rows to {output}")


@data.command("validate")
@click.option("--data", "data_path", type=click.Path(), default=None, help="Data file (default: configured).")
@click.option("--schema", "schema_path", type=click.Path(), default=None, help="Schema YAML.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def data_validate(data_path: str | None, schema_path: str | None, as_json: bool) -> None:
    """Check a data set against its schema; exit 1 when it has errors."""
    from app.datasets import DataError, read_table
    from app.training.validate import validate

    settings = get_settings()
    schema = _schema(schema_path, settings)
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


# ---- train ---------------------------------------------------------------------------------------------
@cli.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Training config YAML (keys of app.config.TrainingConfig).")
@click.option("--data", "data_path", type=click.Path(), default=None,
              help="CSV/Parquet with the schema's names or the UCI codes X1..X23,Y.")
@click.option("--schema", "schema_path", type=click.Path(), default=None, help="Schema YAML.")
@click.option("--promote", type=click.Choice(["auto", "challenger", "champion", "none"]), default="auto",
              show_default=True,
              help="Alias for a model that passes the gate: auto/challenger = challenger (champion when there is "
                   "none yet), champion = replace the champion, none = register only.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train(config_path, data_path, schema_path, promote, as_json, quiet) -> None:
    """Validate, cross-validate the grid, gate, report and register a model."""
    from app.datasets import DataError
    from app.exit_codes import EXIT_DATA, EXIT_GATE
    from app.training.train import train as run_training
    from app.training.validate import ValidationFailed

    settings = get_settings()
    try:
        cfg = load_training_config(config_path, settings.training)
    except ValueError as e:
        raise CliError(f"invalid training config {config_path}: {_first_line(e)}", EXIT_USAGE) from None
    schema = _schema(schema_path, settings)
    path = resolve_data(data_path, settings, quiet)
    try:
        result = run_training(settings, cfg, path, schema, promote=promote, progress=not quiet)
    except ValidationFailed as e:
        raise CliError(f"{e}\nnothing was registered", EXIT_DATA) from None
    except DataError as e:
        raise CliError(f"{e}; nothing was registered", EXIT_DATA) from None
    if as_json:
        click.echo(json.dumps(result.to_json(), default=_json_float))
    else:
        click.echo(f"version {result.version} ({result.alias or 'not promoted'}): {result.selected['label']}; "
                   f"holdout roc_auc {result.holdout.get('roc_auc', float('nan')):.4f}, "
                   f"f1_macro {result.holdout['f1_macro']:.4f}; report {result.report}")
    if not result.gate.passed:
        click.echo("quality gate failed: " + "; ".join(result.gate.reasons), err=True)
        sys.exit(EXIT_GATE)


# ---- registry ------------------------------------------------------------------------------------------
@cli.group()
def registry() -> None:
    """List, inspect, promote and roll back registered versions."""


def _registry():
    from app.registry import Registry

    return Registry(get_settings())


@registry.command("list")
@click.option("--json", "as_json", is_flag=True)
def registry_list(as_json: bool) -> None:
    """Every version with its aliases, classifier, sampler and gate result."""
    versions = _registry().versions()
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


@registry.command("show")
@click.argument("ref")
def registry_show(ref: str) -> None:
    """One version (number or alias) with all its lineage tags, as JSON."""
    from app.registry import RegistryError

    try:
        info = _registry().get(ref)
    except RegistryError as e:
        raise CliError(str(e)) from None
    click.echo(json.dumps(info.to_dict(), indent=2))


@registry.command("promote")
@click.argument("version")
@click.option("--alias", "-a", type=click.Choice(["champion", "challenger"]), required=True)
@click.option("--force", is_flag=True, help="Allow a version that failed the quality gate.")
def registry_promote(version: str, alias: str, force: bool) -> None:
    """Point an alias at a version."""
    from app.registry import RegistryError

    try:
        _registry().promote(version, alias, force=force)
    except RegistryError as e:
        raise CliError(str(e)) from None
    click.echo(f"{alias} -> v{version}")


@registry.command("rollback")
def registry_rollback() -> None:
    """Move champion back to the previous champion."""
    from app.registry import RegistryError

    try:
        old, new = _registry().rollback()
    except RegistryError as e:
        raise CliError(str(e)) from None
    click.echo(f"champion: v{old} -> v{new}")


# ---- predict -------------------------------------------------------------------------------------------
@cli.command()
@click.option("--input", "-i", "input_path", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--output", "-o", "output_path", type=click.Path(dir_okay=False), required=True,
              help="CSV, or Parquet when the name ends in .parquet.")
@click.option("--model", "ref", default="champion", show_default=True, help="Version number or alias.")
@click.option("--chunk-size", type=click.IntRange(1, 10_000_000), default=100_000, show_default=True)
@click.option("--quiet", "-q", is_flag=True)
def predict(input_path: str, output_path: str, ref: str, chunk_size: int, quiet: bool) -> None:
    """Score a file with a registered model, chunk by chunk."""
    from app.batch import BatchInputError, score_file
    from app.bundle import BundleError
    from app.registry import RegistryError

    try:
        _, bundle = _registry().load(ref)
        n = score_file(bundle, Path(input_path), Path(output_path), chunk_size, progress=not quiet)
    except (RegistryError, BundleError, BatchInputError) as e:
        raise CliError(str(e)) from None
    click.echo(f"scored {n} rows -> {output_path}")


# ---- monitor and A/B -----------------------------------------------------------------------------------
@cli.command()
@click.option("--window-hours", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Drift window [default: CREDIT_SCORE_MONITOR_WINDOW_HOURS or 24].")
@click.option("--performance-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Window of predictions with outcomes [default: CREDIT_SCORE_MONITOR_PERFORMANCE_DAYS or 30].")
@click.option("--textfile", type=click.Path(dir_okay=False), default=None,
              help="Also write the gauges here for node-exporter's textfile collector (*.prom).")
@click.option("--dry-run", is_flag=True, help="Evaluate the retrain policy but start no job.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def monitor(window_hours, performance_days, textfile, dry_run, as_json) -> None:
    """Drift, live performance, fairness and A/B from the prediction store; retrain by policy; retention.

    Exit 0 after a run (drift or not: see the report, the gauges and the logs), 1 when it cannot run.
    """
    from app.monitoring.logging import configure_logging
    from app.monitoring.monitor import MonitorError, _plain, run_monitor

    settings = get_settings()
    over = {k: v for k, v in (("monitor_window_hours", window_hours),
                              ("monitor_performance_days", performance_days)) if v is not None}
    if over:
        settings = settings.model_copy(update=over)
    configure_logging(settings.log_level, stream=sys.stderr)  # JSON log lines; stdout has the result
    try:
        summary = run_monitor(settings, dry_run=dry_run, textfile=Path(textfile) if textfile else None)
    except MonitorError as e:
        raise CliError(str(e)) from None
    if as_json:
        click.echo(json.dumps(_plain(summary)))
        return
    d, r = summary["drift"], summary["retrain"]
    click.echo(f"window: {summary['window']['predictions']} predictions in {summary['window']['hours']:g} h; "
               f"drift {d['status']}: {', '.join(d['drifted']) or 'no feature drifts'}")
    for variant, m in summary["live"].items():
        click.echo(f"live {variant} v{m['version']}: {m['n']} outcomes, roc_auc {m['roc_auc']:.4f}, "
                   f"f1_macro {m['f1_macro']:.4f}")
    if summary.get("abtest"):
        click.echo(f"A/B: {summary['abtest']['verdict']}")
    if r["triggered"]:
        what = f"started job {r['job_id']}" if r.get("job_id") else f"no job started ({r.get('skipped') or 'dry run'})"
        click.echo("retrain triggered: " + "; ".join(r["reasons"].values()) + f"; {what}")
    click.echo(f"report {summary['report']}")


@cli.group()
def abtest() -> None:
    """Champion vs challenger on live traffic with outcomes: report and promote."""


def _ab(days: float | None, min_samples: int | None):
    from app.monitoring.abtest import ab_report
    from app.monitoring.store import PredictionStore
    from app.registry import CHALLENGER, CHAMPION

    settings = get_settings()
    url = settings.prediction_store_url
    if url is None:
        raise CliError("the prediction store is disabled (CREDIT_SCORE_STORE_URL=none)")
    reg = _registry()
    champion, challenger = reg.alias_version(CHAMPION), reg.alias_version(CHALLENGER)
    bad = None
    if champion is not None:
        bad = str(reg.load(champion)[1].schema.target.bad_class)
    try:
        rep = ab_report(PredictionStore(url), champion, challenger, bad or "1",
                        min_samples or settings.abtest_min_samples, settings.abtest_min_positives,
                        settings.abtest_alpha, days or settings.monitor_performance_days,
                        max_rows=settings.monitor_max_rows)
    except Exception as e:  # the store is unreachable or unusable
        from app.monitoring.store import _describe

        raise CliError(f"prediction store unavailable: {_describe(e)}") from None
    return reg, rep


_days = click.option("--days", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Window of predictions with outcomes [default: CREDIT_SCORE_MONITOR_PERFORMANCE_DAYS].")
_min = click.option("--min-samples", type=click.IntRange(1), default=None,
                    help="Outcomes needed per variant [default: CREDIT_SCORE_ABTEST_MIN_SAMPLES or 200].")


@abtest.command("report")
@_days
@_min
@click.option("--json", "as_json", is_flag=True)
def abtest_report(days, min_samples, as_json) -> None:
    """Live metrics per variant with 95 % intervals and the DeLong test on ROC-AUC; prints the verdict."""
    from app.monitoring.abtest import render
    from app.monitoring.monitor import _plain

    _, rep = _ab(days, min_samples)
    click.echo(json.dumps(_plain(rep)) if as_json else render(rep))


@abtest.command("promote")
@_days
@_min
@click.option("--dry-run", is_flag=True, help="Say what would happen; move no alias.")
def abtest_promote(days, min_samples, dry_run) -> None:
    """Make the challenger the champion when it is significantly better (exit 1 otherwise)."""
    from app.monitoring.abtest import CHALLENGER_BETTER, render
    from app.registry import CHAMPION, RegistryError

    reg, rep = _ab(days, min_samples)
    click.echo(render(rep))
    if rep["verdict"] != CHALLENGER_BETTER:
        raise CliError(f"not promoting: the verdict is {rep['verdict']}")
    if dry_run:
        click.echo(f"dry run: would move champion v{rep['champion']} -> v{rep['challenger']}")
        return
    try:
        reg.promote(rep["challenger"], CHAMPION)
    except RegistryError as e:
        raise CliError(str(e)) from None
    click.echo(f"champion: v{rep['champion']} -> v{rep['challenger']}")


# ---- serve ---------------------------------------------------------------------------------------------
@cli.command()
@click.option("--host", default=None, help="Bind address [default: CREDIT_SCORE_HOST or 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="[default: CREDIT_SCORE_PORT or 8000]")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="[default: CREDIT_SCORE_WORKERS or 2]")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the registered models with gunicorn (replaces this process)."""
    import os
    import shutil

    env = os.environ
    for key, value in (("CREDIT_SCORE_HOST", host), ("CREDIT_SCORE_PORT", port), ("CREDIT_SCORE_WORKERS", workers)):
        if value is not None:
            env[key] = str(value)
    get_settings.cache_clear()
    settings = get_settings()
    import logging

    from app.monitoring.logging import configure_logging
    from app.secrets import SecretsUnavailable, VaultSettings, build_provider

    configure_logging(settings.log_level)

    vs = VaultSettings.from_env()
    if vs.auth != "none" or vs.production:  # pre-flight: fail closed with one clear line, before gunicorn
        provider = build_provider(vs)
        try:
            provider.check()
        except SecretsUnavailable as e:
            raise CliError(f"secrets unavailable: {e}") from None
        finally:
            provider.close()
    # one inference thread per worker: OpenMP threads of several workers spinning on few cores cut throughput
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    metrics_dir = settings.prometheus_multiproc_dir
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    logging.getLogger("credit_score.serve").info(
        "starting gunicorn", extra={"url.full": f"http://{settings.host}:{settings.port}",
                                    "model.name": settings.model_name, "server.workers": settings.workers})
    args = [sys.executable, "-m", "gunicorn", "--config", "python:app.serving.gunicorn_conf", "app:create_app()"]
    os.execv(sys.executable, args)  # noqa: S606 (our own interpreter, fixed arguments)


# ---- bootstrap (make run) ------------------------------------------------------------------------------
@cli.command()
def bootstrap() -> None:
    """Make the default data if none is configured and train a model if none is registered."""
    settings = get_settings()
    reg = _registry()
    champion = reg.alias_version("champion")
    if champion is not None:
        click.echo(f"champion is version {champion} of {settings.model_name} ({settings.tracking_uri})")
        return
    ctx = click.get_current_context()
    ctx.invoke(train, config_path=None, data_path=None, schema_path=None, promote="auto", as_json=False,
               quiet=False)
    champion = reg.alias_version("champion")
    if champion is None:
        raise CliError("training finished without a champion (see the gate result above)")
    click.echo(f"champion is version {champion}: {reg.bundle_path(champion)}")


def _first_line(e: Exception) -> str:
    return " ".join(str(e).split())[:400]


def _json_float(o):
    return str(o)


def main(argv: list[str] | None = None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="credit-score", standalone_mode=False)
    except click.UsageError as e:
        click.echo(f"credit-score: error: {_first_line(Exception(e.format_message()))}", err=True)
        return EXIT_USAGE
    except click.ClickException as e:
        click.echo(f"credit-score: error: {e.format_message()}", err=True)
        return e.exit_code
    except click.Abort:
        return 130
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
