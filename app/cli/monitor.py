"""``credit-score monitor`` (the monitor job) and ``credit-score abtest`` (champion vs challenger)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from app.cli.common import CliError, open_registry
from app.config import get_settings


@click.command("monitor")
@click.option("--window-hours", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Drift window [default: CREDIT_SCORE_MONITOR_WINDOW_HOURS or 24].")
@click.option("--performance-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Window of predictions with outcomes [default: CREDIT_SCORE_MONITOR_PERFORMANCE_DAYS or 30].")
@click.option("--textfile", type=click.Path(dir_okay=False), default=None,
              help="Also write the gauges here for node-exporter's textfile collector (*.prom).")
@click.option("--dry-run", is_flag=True, help="Evaluate the retrain policy but start no job.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def monitor_command(window_hours, performance_days, textfile, dry_run, as_json) -> None:
    """Drift, live performance, fairness and A/B from the prediction store; retrain by policy; retention.

    Exit 0 after a run (drift or not: see the report, the gauges and the logs), 1 when it cannot run.
    """
    from app.monitoring.logging import configure_logging
    from app.monitoring.monitor import MonitorError, json_safe, run_monitor

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
        click.echo(json.dumps(json_safe(summary)))
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


@click.group("abtest")
def abtest_group() -> None:
    """Champion vs challenger on live traffic with outcomes: report and promote."""


def _ab(days: float | None, min_samples: int | None):
    """The registry and the A/B report of its champion and challenger; CliError when the store is unusable."""
    from app.monitoring.abtest import ab_report
    from app.monitoring.store import PredictionStore
    from app.registry import CHALLENGER, CHAMPION

    settings = get_settings()
    url = settings.prediction_store_url
    if url is None:
        raise CliError("the prediction store is disabled (CREDIT_SCORE_STORE_URL=none)")
    reg = open_registry()
    champion, challenger = reg.alias_version(CHAMPION), reg.alias_version(CHALLENGER)
    if champion is None or challenger is None:
        lacks = " and ".join(a for a, v in ((CHAMPION, champion), (CHALLENGER, challenger)) if v is None)
        raise CliError(f"nothing to compare: the registry has no {lacks} (`credit-score train` registers a "
                       f"challenger once there is a champion)")
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


@abtest_group.command("report")
@_days
@_min
@click.option("--json", "as_json", is_flag=True)
def abtest_report(days, min_samples, as_json) -> None:
    """Live metrics per variant with 95 % intervals and the DeLong test on ROC-AUC; prints the verdict."""
    from app.monitoring.abtest import render
    from app.monitoring.monitor import json_safe

    _, rep = _ab(days, min_samples)
    click.echo(json.dumps(json_safe(rep)) if as_json else render(rep))


@abtest_group.command("promote")
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
