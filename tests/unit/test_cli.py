"""The `credit-score` command's surface, in-process: every command has help, bad arguments give one line and
exit 2. (Commands at work: tests/integration/test_cli_train.py.)"""

from __future__ import annotations

import click
import pytest

from app.cli import cli
from tests.cli_runner import invoke_cli


@pytest.fixture(autouse=True)
def _store_in_tmp(tmp_path, monkeypatch):
    """Should a command get as far as its settings, they point at tmp_path."""
    monkeypatch.setenv("CREDIT_SCORE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CREDIT_SCORE_REPORTS_DIR", str(tmp_path / "reports"))


def commands(cmd: click.Command = cli, path: tuple[str, ...] = ()):
    """(path, command) of the group and of every command under it, depth first."""
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            yield from commands(cmd.commands[name], (*path, name))


def test_every_command_is_walked():
    paths = {" ".join(p) for p, _ in commands()}
    assert {"", "data", "data validate", "train", "registry", "registry rollback", "predict", "monitor", "abtest",
            "abtest report", "abtest promote", "serve", "bootstrap", "schema", "schema infer", "schema check",
            "simulate"} <= paths
    assert len(paths) == 22


@pytest.mark.parametrize("path", [p for p, _ in commands()], ids=lambda p: " ".join(p) or "credit-score")
def test_every_command_has_help(path):
    cmd = dict(commands())[path]
    assert (cmd.help or "").strip(), f"{' '.join(path)} has no help text"
    proc = invoke_cli([*path, "--help"])
    assert proc.returncode == 0 and proc.stdout.startswith(f"Usage: credit-score {' '.join(path)}".rstrip()), \
        proc.stdout + proc.stderr
    summary = " ".join(cmd.help.split("\n\n")[0].split())  # the first paragraph, as click rewraps it
    assert summary[:60] in " ".join(proc.stdout.split()), proc.stdout
    if isinstance(cmd, click.Group):  # the group lists each command with its one-line help
        for name, sub in cmd.commands.items():
            assert sub.get_short_help_str(), f"{name} has no short help"
            assert f"  {name} " in proc.stdout, name


@pytest.mark.parametrize("args, fragment", [
    (["train", "--bogus"], "No such option '--bogus'"),
    (["data", "make-synthetic", "--rows", "0", "-o", "x.csv"], "Invalid value for '--rows'"),
    (["registry", "promote", "1", "--alias", "king"], "Invalid value for '--alias'"),
    (["predict", "--input", "/nonexistent.csv", "-o", "x.csv"], "does not exist"),
    (["monitor", "--window-hours", "0"], "Invalid value for '--window-hours'"),
    (["abtest", "report", "--min-samples", "0"], "Invalid value for '--min-samples'"),
    (["serve", "--port", "70000"], "Invalid value for '--port'"),
    (["simulate", "--shift", "2"], "Invalid value for '--shift'"),
    (["simulate", "--store-url", "::not-a-url"], "--store-url is not a SQLAlchemy URL"),
    (["nosuchcommand"], "No such command"),
])
def test_bad_arguments_give_one_line_and_exit_2(args, fragment):
    proc = invoke_cli(args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("credit-score: error:") and fragment in lines[0], proc.stderr
    assert proc.stdout == ""


def test_version():
    proc = invoke_cli(["--version"])
    assert proc.returncode == 0 and proc.stdout.startswith("credit-score, version ")


def test_monitor_without_a_store_is_one_line_and_leaves_no_logging_behind(monkeypatch):
    import logging

    monkeypatch.setenv("CREDIT_SCORE_STORE_URL", "none")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    proc = invoke_cli(["monitor", "--json"])
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == "credit-score: error: the prediction store is disabled " \
                                  "(CREDIT_SCORE_STORE_URL=none): nothing to monitor"
    assert root.handlers == handlers and root.level == level  # configure_logging's handler is gone again
