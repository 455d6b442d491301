"""``credit-score simulate``: the whole loop on the local stack (real gunicorn, MLflow registry, prediction store
and retrain job runner) in a few minutes, with progress output and an HTML report. The way to see the system
work: app/cli/simulate/loop.py lists the steps."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import click

from app.cli.common import CliError


@click.command("simulate")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Where the run keeps its registry, store, logs and report (kept afterwards) [default: a new "
                   "temporary directory, kept for the report].")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of every population drawn.")
@click.option("--shift", type=click.FloatRange(0.1, 1.0), default=1.0, show_default=True,
              help="Strength of the drift: the income shock and product mix of the shifted population.")
@click.option("--quick", is_flag=True, help="Less traffic and a smaller model (the test's setting).")
@click.option("--store-url", default=None,
              help="The prediction store's SQLAlchemy URL (e.g. PostgreSQL) [default: a SQLite file in the "
                   "working directory].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="[default: a free port]")
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as one JSON object on stdout.")
def simulate_command(workdir, seed, shift, quick, store_url, port, as_json) -> None:
    """Train v1, serve it, shift the population, post outcomes, let the monitor start a retrain on production
    data, A/B the challenger, promote it, roll back; report with charts."""
    from app.cli.simulate.loop import Loop, Plan
    from app.cli.simulate.report import write_report

    if store_url is not None:
        import sqlalchemy as sa

        try:
            sa.engine.make_url(store_url)
        except sa.exc.ArgumentError:
            raise CliError("--store-url is not a SQLAlchemy URL (e.g. postgresql+psycopg://user@host/db)", 2) from None
    if workdir is None:
        wd = Path(tempfile.mkdtemp(prefix="credit-score-simulate-"))
    else:
        wd = Path(workdir).resolve()
        if wd.exists() and any(wd.iterdir()):
            raise CliError(f"--workdir {wd} is not empty: give a new or empty directory", 2)
        wd.mkdir(parents=True, exist_ok=True)
    plan = Plan.quick(seed) if quick else Plan(seed=seed)
    plan.shift = shift

    def say(msg: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {msg}", err=True)

    t0 = time.monotonic()
    say(f"simulating the loop in {wd} (seed {seed}, shift {shift:g}{', quick' if quick else ''})")
    out = Loop(wd, plan, say, store_url=store_url, port=port).run()
    out.report = str(write_report(out, wd / "report"))
    summary = {**out.to_dict(), "duration_s": round(time.monotonic() - t0, 1)}
    (wd / "simulation.json").write_text(json.dumps(summary, indent=2, default=str))
    say(f"{out.requests.get('sent', 0)} requests, {out.requests.get('failed', 0)} failed; "
        f"{summary['duration_s']:.0f} s; report {out.report}")
    if as_json:
        click.echo(json.dumps(summary, default=str))
    if out.error:
        raise CliError(f"the loop stopped: {out.error} (logs in {wd / 'logs'})")
