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
