"""The JSON log formatter and handler: the request path's fast formatting is the library's, line for line."""

import io
import json
import logging

import numpy as np
import pytest

from app.monitoring.logging import LINES, PREDICTION_LOGGER, JsonLineHandler, json_formatter


def _record(name="credit_score.access", msg="request", args=(), **extra):
    rec = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


@pytest.mark.parametrize("record", [
    _record(),
    _record(**{"http.request.method": "POST", "event.duration": 123, "trace.id": None, "_private": 1}),
    _record(msg="loaded %s of %d", args=("v", 3), **{"model.version": "3", "x": np.float64(0.25), "n": np.int64(4)}),
    _record(name=PREDICTION_LOGGER, msg="prediction", **{"model.name": "m", LINES: [
        {"prediction.class": "1", "prediction.probability": 0.5}, {"prediction.class": "0", "nested": {"a": [1]}}]}),
])
def test_fast_formatting_is_the_librarys(record):
    fmt = json_formatter()
    assert fmt.format(record) == fmt.format_general(record)


def test_an_exception_keeps_the_librarys_stack_trace():
    fmt = json_formatter()
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert '"error.stack_trace":"Traceback' in fmt.format(rec)


class CountingStream(io.StringIO):
    flushes = 0

    def flush(self):
        self.flushes += 1
        super().flush()


def test_a_prediction_line_is_flushed_with_the_request_line_that_follows_it():
    stream = CountingStream()
    handler = JsonLineHandler(stream)
    handler.setFormatter(json_formatter())
    handler.handle(_record(name=PREDICTION_LOGGER, msg="prediction"))
    assert stream.flushes == 0 and stream.getvalue().count("\n") == 1
    handler.handle(_record())
    assert stream.flushes == 1 and stream.getvalue().count("\n") == 2


def test_the_root_json_handler_redacts_secrets_from_its_first_line():
    """configure_logging's handler carries the process-wide redaction filter itself, so a handler set up before
    (or without) the app factory's Vault provider never writes a secret value a provider has seen."""
    from app.monitoring.logging import configure_logging
    from app.secrets.redaction import REDACTED, Redactor, register

    secret = "another-s3cr3t-4567"  # noqa: S105 (a test value)
    provider = Redactor()
    provider.remember(secret)
    register(provider)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    try:
        configure_logging("INFO", stream=out)
        logging.getLogger("credit_score.test").warning("token %s", secret)
        try:
            raise RuntimeError(f"failed with {secret}")
        except RuntimeError:
            logging.getLogger("credit_score.test").exception("boom")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert secret not in out.getvalue() and REDACTED in out.getvalue()
    boom = json.loads(out.getvalue().splitlines()[-1])  # the traceback keeps its ECS field once redacted
    assert "exc_info" not in boom and "RuntimeError" in boom["error.stack_trace"] and secret not in boom[
        "error.stack_trace"]
