"""JSON logs with ECS field names (python-json-logger), for ELK.

One line per request and one per prediction, written to stdout. Structured fields are passed as ``extra``
with their ECS names (``http.request.method``, ``model.version``, ...). Nothing is configured on import:
:func:`configure_logging` does it (the app factory and gunicorn's config call it).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

SERVICE_NAME = "credit-score"
_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
# ``extra={LINES: [fields, ...]}``: the record is written as one JSON line per entry, each the record's own
# fields plus the entry's (a batch's prediction lines: formatted at ~2 us a line, written in one call)
LINES = "credit_score.lines"


class EcsJsonFormatter(OrjsonFormatter):
    """``@timestamp``, ``log.level``, ``log.logger``, ``message``, ``service.*`` plus the record's extras.

    Serialised by orjson (numpy numbers stay numbers); a value it cannot encode goes through
    python-json-logger's defaults (exceptions, tracebacks, bytes, enums, else ``str``).
    """

    def __init__(self, service_version: str = "", **kw: Any):
        super().__init__(fmt="%(message)s", reserved_attrs=[*RESERVED_ATTRS, LINES], **kw)
        self.service_version = service_version
        self._skip = frozenset([*RESERVED_ATTRS, LINES, "message"])  # as the library skips them

    def format(self, record: logging.LogRecord) -> str:
        """The request path's records (a message and extras) are built here directly, the same fields in the
        same order as python-json-logger builds them (:meth:`format_general`, a test compares the two) at a
        fraction of its cost; records with an exception, a stack or a dict message go the library's way."""
        if record.exc_info or record.exc_text or record.stack_info or isinstance(record.msg, dict):
            return self.format_general(record)
        skip = self._skip
        head = {"message": record.getMessage()}
        for k, v in record.__dict__.items():
            if k not in skip and k[:1] != "_":
                head[k] = v
        head["@timestamp"] = self.formatTime(record)
        head["log.level"] = record.levelname.lower()
        head["log.logger"] = record.name
        head["service.name"] = SERVICE_NAME
        head["service.version"] = self.service_version
        lines = record.__dict__.get(LINES)
        if not lines:
            return self.jsonify_log_record(head)
        return "\n".join(self.jsonify_log_record({**head, **line}) for line in lines)

    def format_general(self, record: logging.LogRecord) -> str:
        lines = record.__dict__.get(LINES)
        if not lines:
            return super().format(record)
        head = orjson.loads(super().format(record))
        return "\n".join(self.jsonify_log_record({**head, **line}) for line in lines)

    def formatTime(self, record, datefmt=None):  # noqa: N802 (logging API)
        ms = int(record.msecs)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{ms:03d}Z"

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["@timestamp"] = self.formatTime(record)
        log_record["log.level"] = record.levelname.lower()
        log_record["log.logger"] = record.name
        log_record["service.name"] = SERVICE_NAME
        log_record["service.version"] = self.service_version
        # the library writes the traceback as "exc_info": from exc_info, or from exc_text alone once the secret
        # redaction filter has replaced the exception by its redacted text
        if "exc_info" in log_record and "error.stack_trace" not in log_record:
            log_record["error.stack_trace"] = log_record.pop("exc_info")

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        return orjson.dumps(log_data, default=self.json_default, option=_ORJSON).decode()


def json_formatter() -> EcsJsonFormatter:
    from app.version import __version__

    return EcsJsonFormatter(service_version=__version__)


PREDICTION_LOGGER = "credit_score.prediction"  # its lines are always followed by the request's own line


class JsonLineHandler(logging.StreamHandler):
    """A stream handler that leaves a prediction line in the stream's buffer: the request line written at the
    end of the same request (``app/api/__init__.py``) flushes both, one write per request instead of two."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
            if record.name != PREDICTION_LOGGER:
                self.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 (logging's own contract: never raise from emit)
            self.handleError(record)


def configure_logging(level: str = "INFO", stream=None) -> None:
    """Route the root logger (and Flask's, werkzeug's) to one JSON handler on stdout, which redacts secrets."""
    from app.secrets.redaction import SecretRedactingFilter

    handler = JsonLineHandler(stream or sys.stdout)
    handler.setFormatter(json_formatter())
    handler.set_name("credit-score-json")
    handler.addFilter(SecretRedactingFilter())  # every live secret provider's values, from the first line on
    root = logging.getLogger()
    for h in list(root.handlers):  # ours from an earlier call, or gunicorn's logconfig: one JSON handler only
        if h.get_name() == "credit-score-json" or isinstance(h.formatter, EcsJsonFormatter):
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # what no line of ours shows (ECS fields above): the caller's file and line (a stack walk per record),
    # thread, process and multiprocessing names (the logging HOWTO's "Optimization" section)
    logging._srcfile = None  # noqa: SLF001 (the documented switch)
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.captureWarnings(True)  # Python warnings become JSON log lines too
    for noisy in ("urllib3", "alembic", "mlflow", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def gunicorn_logconfig(level: str = "INFO") -> dict[str, Any]:
    """gunicorn's own logs as JSON too (its error log; access logs are ours, one line per request), with every
    secret value any live secret provider has seen redacted, like the app's own lines."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "app.monitoring.logging.json_formatter"}},
        "filters": {"redact_secrets": {"()": "app.secrets.redaction.SecretRedactingFilter"}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stdout", "filters": ["redact_secrets"]}},
        "loggers": {
            "gunicorn.error": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
        "root": {"handlers": [], "level": level.upper()},  # the app factory attaches the root handler
    }


def gunicorn_logger_class():
    """gunicorn's Logger without its access log: the app writes one JSON line per request itself, and gunicorn
    would otherwise build its access-log atoms for every request (a logconfig_dict turns them on) only to
    drop them at the CRITICAL level above (~3 % of a worker's time under load)."""
    from gunicorn.glogging import Logger

    class GunicornLogger(Logger):
        @property
        def access_log_enabled(self) -> bool:
            return False

        def access(self, resp, req, environ, request_time) -> None:  # noqa: ARG002 (gunicorn's signature)
            return None

    return GunicornLogger

