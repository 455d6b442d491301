"""The ``credit-score`` command: data, schema, train, registry, predict (batch), monitor, abtest, serve,
bootstrap, simulate.

Bad arguments print one line (``credit-score: error: ...``) and exit 2; data that fails validation exits 1,
a model that fails the quality gate exits 3, batch scoring that rejected rows exits 4 (app.exit_codes). An
error nobody foresaw is still one line (exit 1), with the traceback only under ``credit-score --traceback``.
Progress goes to stderr; ``--json`` output to stdout.

One module per command group (data, schema, train, registry, predict, monitor/abtest, serve, bootstrap,
simulate); what they share is in common.py. Each command imports its heavy dependencies when it runs, so the
command starts fast.
"""

from __future__ import annotations

import click
from pydantic import ValidationError

from app.cli.bootstrap import bootstrap_command
from app.cli.common import EXIT_USAGE, CliError, first_line, resolve_data, use_registry_credentials
from app.cli.data import data_group
from app.cli.monitor import abtest_group, monitor_command
from app.cli.predict import predict_command
from app.cli.registry import registry_group
from app.cli.schema import schema_group
from app.cli.serve import serve_command
from app.cli.simulate import simulate_command
from app.cli.train import train_command

__all__ = ["EXIT_USAGE", "CliError", "cli", "main", "resolve_data"]


UNEXPECTED = "unexpected"  # the first word of the one line an unforeseen error prints (tests look for it)
_SHOW_TRACEBACK = [False]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="credit-score-mlops", prog_name="credit-score")
@click.option("--traceback", "show_traceback", is_flag=True, help="On an unexpected error, show the traceback.")
@click.pass_context
def cli(ctx: click.Context, show_traceback: bool) -> None:
    """Credit-risk models: data, training, registry and batch scoring."""
    _SHOW_TRACEBACK[0] = show_traceback
    # serve: each worker reads its own (app.create_app); simulate: a registry of its own, in its working directory
    if ctx.invoked_subcommand not in ("serve", "data", "schema", "simulate"):
        use_registry_credentials(store=ctx.invoked_subcommand in ("monitor", "abtest"))


for _command in (data_group, schema_group, train_command, registry_group, predict_command, monitor_command,
                 abtest_group, serve_command, bootstrap_command, simulate_command):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """The console script ``credit-score``: run the command, turn click's errors into one line and an exit code."""
    _SHOW_TRACEBACK[0] = False
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
    except ValidationError as e:
        if e.title != "Settings":
            return _unexpected(e)
        click.echo(f"credit-score: error: invalid configuration: {settings_problems(e)}", err=True)
        return EXIT_USAGE
    except Exception as e:  # a bug of ours: still one line for the user; --traceback shows where
        return _unexpected(e)
    return rv if isinstance(rv, int) else 0


def settings_problems(e: ValidationError) -> str:
    """The settings' validation errors by the variable the user set: ``CREDIT_SCORE_N_JOBS: ... (given 'abc')``."""
    parts = []
    for err in e.errors():
        var = "CREDIT_SCORE_" + "__".join(str(p) for p in err["loc"]).upper()
        given = f" (given {err['input']!r})" if not isinstance(err.get("input"), dict | list) else ""
        parts.append(f"{var}: {err['msg']}{given}")
    return "; ".join(parts)


def _unexpected(e: Exception) -> int:
    """An error nobody foresaw: one line (exit 1), or the traceback under ``--traceback``."""
    if _SHOW_TRACEBACK[0]:
        raise e
    click.echo(f"credit-score: error: {UNEXPECTED} {type(e).__name__}: {first_line(e)} (please report it; "
               f"--traceback shows where)", err=True)
    return 1
