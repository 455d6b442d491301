"""The ``credit-score`` command: data, train, registry, predict (batch), monitor, abtest, serve and bootstrap.

Bad arguments print one line (``credit-score: error: ...``) and exit 2; data that fails validation exits 1,
a model that fails the quality gate exits 3. Progress goes to stderr; ``--json`` output to stdout.

One module per command group (data, train, registry, predict, monitor/abtest, serve, bootstrap); what they
share is in common.py. Each command imports its heavy dependencies when it runs, so the command starts fast.
"""

from __future__ import annotations

import click

from app.cli.bootstrap import bootstrap_command
from app.cli.common import EXIT_USAGE, CliError, first_line, resolve_data, use_registry_credentials
from app.cli.data import data_group
from app.cli.monitor import abtest_group, monitor_command
from app.cli.predict import predict_command
from app.cli.registry import registry_group
from app.cli.serve import serve_command
from app.cli.train import train_command

__all__ = ["EXIT_USAGE", "CliError", "cli", "main", "resolve_data"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="credit-score-mlops", prog_name="credit-score")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Credit-risk models: data, training, registry and batch scoring."""
    if ctx.invoked_subcommand not in ("serve", "data"):  # serve: each worker reads its own (app.create_app)
        use_registry_credentials()


for _command in (data_group, train_command, registry_group, predict_command, monitor_command, abtest_group,
                 serve_command, bootstrap_command):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """The console script ``credit-score``: run the command, turn click's errors into one line and an exit code."""
    try:
        rv = cli.main(args=argv, prog_name="credit-score", standalone_mode=False)
    except click.UsageError as e:
        click.echo(f"credit-score: error: {first_line(Exception(e.format_message()))}", err=True)
        return EXIT_USAGE
    except click.ClickException as e:
        click.echo(f"credit-score: error: {e.format_message()}", err=True)
        return e.exit_code
    except click.Abort:
        return 130
    return rv if isinstance(rv, int) else 0
