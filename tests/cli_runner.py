"""The `credit-score` command in the test process (click's CliRunner), as a fresh process would run it; and the
real console script in a subprocess, for the few tests that must start one.

In-process, what a fresh process would not share with the test is reset around each invocation: the settings
cache (``get_settings``), the ``MLFLOW_*`` variables that ``mlflow.set_tracking_uri`` writes, the working
directory, and the logging set-up of ``configure_logging`` (root handlers and level, logging flags, warning
capture).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from app.config import PROJECT_ROOT
from tests.stores import clone_models_dir

ISOLATED = ("CREDIT_SCORE_", "MLFLOW_")  # read by Settings: a test's command sees only the ones it is given
MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@dataclass
class CliResult:
    """What a finished `credit-score` run left: the shape of subprocess.CompletedProcess."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def invoke_cli(args: Sequence[object], env: Mapping[str, str] | None = None, check: bool = False) -> CliResult:
    """``credit-score ARGS`` in this process. ``env``: the whole environment of the command, as for a
    subprocess (``CREDIT_SCORE_*``/``MLFLOW_*`` variables not in it are unset); None: this process's."""
    import prometheus_client  # noqa: F401 (its value class is fixed at import from PROMETHEUS_MULTIPROC_DIR: not ours)

    from app.cli import main
    from app.config import get_settings

    argv = [str(a) for a in args]
    overrides: dict[str, str | None] = dict.fromkeys(MLFLOW_ENV)  # None: unset now, restored afterwards
    if env is not None:
        overrides.update(dict.fromkeys(k for k in os.environ if k.startswith(ISOLATED)))
        overrides.update({k: v for k, v in env.items() if k.startswith(ISOLATED) or os.environ.get(k) != v})
    cwd = os.getcwd()
    get_settings.cache_clear()
    try:
        with logging_restored(), CliRunner().isolation(env=overrides) as (out, err, _):
            os.chdir(PROJECT_ROOT)
            try:
                code = main(argv)
            except SystemExit as e:  # sys.exit in a command (the console script exits with it)
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            result = CliResult(argv, code, out.getvalue().decode(), err.getvalue().decode())
    finally:
        os.chdir(cwd)
        get_settings.cache_clear()
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


@contextmanager
def logging_restored() -> Iterator[None]:
    """Undo what app.monitoring.logging.configure_logging changes in the logging module's global state."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    flags = (logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing)  # noqa: SLF001
    noisy = {name: logging.getLogger(name).level for name in ("urllib3", "alembic", "mlflow", "werkzeug")}
    capturing = logging._warnings_showwarning is not None  # noqa: SLF001
    try:
        yield
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
        root.handlers[:] = handlers  # the ones it replaced, back in their order
        root.setLevel(level)
        logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing = flags  # noqa: SLF001
        for name, lvl in noisy.items():
            logging.getLogger(name).setLevel(lvl)
        logging.captureWarnings(capturing)


def run_cli(args: Sequence[object], env: Mapping[str, str], check: bool = False, timeout: float = 600):
    """The real console script ``credit-score`` (``python -m app.cli`` without one) in a subprocess."""
    exe = Path(sys.executable).with_name("credit-score")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "app.cli"]
    proc = subprocess.run(cmd + [str(a) for a in args], env=dict(env), capture_output=True, text=True,
                          timeout=timeout, cwd=PROJECT_ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


copy_store = clone_models_dir  # one copier for every test store (tests/stores.py)
