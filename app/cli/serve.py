"""``credit-score serve``: the service under gunicorn (this process becomes gunicorn)."""

from __future__ import annotations

import sys

import click

from app.cli.common import CliError
from app.config import get_settings


@click.command("serve")
@click.option("--host", default=None, help="Bind address [default: CREDIT_SCORE_HOST or 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="[default: CREDIT_SCORE_PORT or 8000]")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="[default: CREDIT_SCORE_WORKERS or 2]")
def serve_command(host: str | None, port: int | None, workers: int | None) -> None:
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
