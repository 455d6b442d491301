"""The log contract: the lines the real service writes vs the Elasticsearch index template (elk/).

One run of `credit-score serve` (conftest `service_run`) is driven through every kind of line it writes.
Every field in those lines must be mapped with a compatible type, and every field the template maps must be
written by the service, unless it is one of the listed shipper fields (elk_tools.SHIPPER_FIELDS).
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.infra.elk.elk_tools import SHIPPER_FIELDS, compatible, flatten, mapped_fields
from tests.unit.test_api import TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _emitted(service_run) -> dict[str, set[str]]:
    fields = mapped_fields()
    seen: dict[str, set[str]] = {}
    for line in service_run.lines:
        for key, value in flatten(line, fields).items():
            if value is not None:
                seen.setdefault(key, set()).add(type(value).__name__)
    return seen


def test_the_driven_run_wrote_every_kind_of_line(service_run):
    assert service_run.statuses == {
        "ready": 200, "predict": 200, "predict_invalid": 422, "batch": 200, "model_info": 200, "not_found": 404,
        "retrain_forbidden": 403, "retrain_started": 202, "retrain_busy": 409, "job_status_broken": 500,
        "predict_after_reload": 200}
    assert all(x.startswith("{") for x in service_run.raw), [x for x in service_run.raw if not x.startswith("{")][:3]
    loggers = Counter(x["log.logger"] for x in service_run.lines)
    assert {"credit_score.serve", "gunicorn.error", "credit_score.access", "credit_score.prediction",
            "credit_score.reload", "credit_score.api"} <= set(loggers), loggers
    predictions = [x for x in service_run.lines if x["message"] == "prediction"]
    assert {x["model.variant"] for x in predictions} == {"champion", "challenger"}
    assert {x["prediction.shadow"] for x in predictions} == {True, False}
    reloads = [x for x in service_run.lines if x["log.logger"] == "credit_score.reload"]
    v = service_run.versions
    assert any(x.get("model.previous_version") == v["champion"] and x["model.version"] == v["promoted"]
               for x in reloads)
    assert any(x["message"] == "refused model version" and x["model.version"] == v["tampered"] for x in reloads)
    assert any("error.stack_trace" in x for x in service_run.lines)


def test_every_field_the_service_writes_is_mapped_with_a_compatible_type(service_run):
    fields = mapped_fields()
    problems = set()
    for line in service_run.lines:
        for key, value in flatten(line, fields).items():
            if key not in fields:
                problems.add(f"{key}: written by the service ({line['log.logger']}), not in the index template")
            elif not compatible(value, fields[key]):
                problems.add(f"{key}: {type(value).__name__} value {value!r:.40} vs mapping {fields[key]}")
    assert not problems, "\n".join(sorted(problems))


def test_every_mapped_field_is_written_by_the_service_or_added_by_a_shipper(service_run):
    fields = set(mapped_fields())
    emitted = set(_emitted(service_run))
    ours = fields - set(SHIPPER_FIELDS)
    assert not ours - emitted, f"mapped but never written by the driven service: {sorted(ours - emitted)}"
    # the shipper list holds only mapped fields, and none the service writes itself
    assert set(SHIPPER_FIELDS) <= fields, sorted(set(SHIPPER_FIELDS) - fields)
    assert not set(SHIPPER_FIELDS) & emitted, sorted(set(SHIPPER_FIELDS) & emitted)


def test_no_secret_reaches_the_logs(service_run):
    text = service_run.log.read_text()
    assert TOKEN not in text  # the admin token that was used
    assert "wrong-token" not in text  # nor a token that was refused
    assert "Bearer" not in text and "Authorization" not in text


def test_one_log_line_per_request(service_run):
    """Regression: gunicorn's logconfig and create_app() once both attached a JSON handler to the root logger."""
    lines = [x for x in service_run.lines if x["message"] == "request" and x.get("trace.id") == "elk-0"]
    assert len(lines) == 1, f"{len(lines)} request lines for one request"
