"""gunicorn configuration, from the same settings as everything else (``credit-score serve`` uses it).

Sync workers, one inference thread each (OMP_NUM_THREADS=1 is set by ``credit-score serve``), JSON logs,
graceful shutdown on SIGTERM within ``graceful_timeout``, the Prometheus multiprocess clean-up hook, the
worker's start-up heap frozen for the garbage collector, and the retrain job its workers started stopped when
the server exits (a job runs in its own session: nothing else would end it).
"""

import gc

from app import jobs
from app.config import get_settings
from app.monitoring.logging import gunicorn_logconfig, gunicorn_logger_class
from app.monitoring.metrics import mark_worker_dead

_s = get_settings()

bind = f"{_s.host}:{_s.port}"
workers = _s.workers
worker_class = "sync"
timeout = _s.timeout
graceful_timeout = _s.graceful_timeout
keepalive = 5
accesslog = None
logconfig_dict = gunicorn_logconfig(_s.log_level)
logger_class = gunicorn_logger_class()  # no gunicorn access log (ours is the app's request line)
proc_name = "credit-score"
forwarded_allow_ips = "127.0.0.1"
# gunicorn >= 26 opens a control socket at one fixed path per user: several instances on a host (colours,
# tests) would fight over it, and nothing here uses it
control_socket_disable = True


_exited_workers: set[int] = set()  # every worker this server had, for on_exit (the job records who started it)


def child_exit(server, worker):  # noqa: ARG001 (gunicorn hook signature)
    mark_worker_dead(worker.pid)
    _exited_workers.add(worker.pid)


def on_exit(server):
    """The server is shutting down: stop the retrain job one of its workers started (process runner)."""
    stopped = jobs.stop_jobs_started_by(_s, _exited_workers | set(server.WORKERS))
    if stopped:
        server.log.info("stopped retrain job %s: the server is shutting down", ", ".join(stopped))


def post_worker_init(worker):  # noqa: ARG001 (gunicorn hook signature)
    """The app and its model are loaded: move every object so far out of the collector's reach (``gc.freeze``).

    A worker starts with ~360,000 tracked objects (Flask, MLflow, scikit-learn, XGBoost, pandas), and every full
    collection walked them all: 0.4 s here, and a 10,000-row batch's allocations triggered one about every
    other batch. Frozen objects are never collected: what start-up leaves in reference cycles (at most the
    first model, once replaced) stays, once per worker.
    """
    gc.freeze()
