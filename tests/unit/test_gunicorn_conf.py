"""The gunicorn configuration as gunicorn reads it (`credit-score serve` passes python:app.serving.gunicorn_conf)."""

from __future__ import annotations

import gc

from gunicorn.config import Config


def _gunicorn_config() -> Config:
    from app.serving import gunicorn_conf

    cfg = Config()
    for name, value in vars(gunicorn_conf).items():  # what gunicorn does with a python: config module
        if name in cfg.settings:
            cfg.set(name, value)
    return cfg


def test_a_worker_freezes_its_start_up_heap_once_the_app_is_loaded():
    cfg = _gunicorn_config()
    assert cfg.worker_class_str == "sync" and cfg.keepalive == 5
    before = gc.get_freeze_count()
    try:
        cfg.post_worker_init(None)  # gunicorn calls it in each worker after loading the app
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


def test_gunicorns_own_error_log_redacts_secret_values(capsys):
    """gunicorn's error logger has its own handler (logconfig_dict): a secret value a provider has seen is
    redacted there too, in the message, its arguments and a logged exception."""
    import json

    from app.secrets.redaction import REDACTED, Redactor, register

    secret = "s3cr3t-vault-value-0123"  # noqa: S105 (a test value)
    provider = Redactor()
    provider.remember(secret)
    register(provider)  # what every SecretProvider does when it starts
    cfg = _gunicorn_config()
    log = cfg.logger_class(cfg)  # gunicorn's Logger: applies logconfig_dict
    log.error("worker failed to boot: %s", f"password={secret}")
    try:
        raise RuntimeError(f"connection to postgresql://app:{secret}@db failed")
    except RuntimeError:
        log.exception("error handling request")
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(lines) == 2 and secret not in out, out
    assert lines[0]["message"] == f"worker failed to boot: password={REDACTED}"
    assert REDACTED in json.dumps(lines[1]) and "RuntimeError" in json.dumps(lines[1])
    # without the filter the value would be there: the check can fail
    import logging

    handler = logging.getLogger("gunicorn.error").handlers[0]
    (redacting,) = handler.filters
    handler.removeFilter(redacting)
    try:
        log.error("again: %s", secret)
        assert secret in capsys.readouterr().out
    finally:
        handler.addFilter(redacting)
