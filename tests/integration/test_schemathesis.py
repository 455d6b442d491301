"""Schemathesis against the real service's /openapi.json: every operation, bounded examples, no 5xx, responses
conform to the documented status codes, content types and schemas, and invalid data is rejected.

Excluded check: `positive_data_acceptance`. Some rules cannot be written in JSON Schema (a v2 tensor's data
length must match its shape; per-feature tensors must name exactly the model's features), so a schema-valid
request can still be, correctly, refused with a 4xx naming the problem.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.test_serve_gunicorn import Server, server_env, store  # noqa: F401 (store is a fixture)
from tests.tools import free_port, which

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_schemathesis_finds_no_server_errors_or_schema_violations(store, tmp_path):  # noqa: F811 (fixture)
    exe = which("schemathesis")
    assert exe, "schemathesis is a dev dependency (requirements-dev.txt)"
    tmp, _ = store
    # the header's token is the feedback token, not the admin token: /feedback is exercised past authentication
    s = Server(server_env(tmp, CREDIT_SCORE_LOG_LEVEL="WARNING", CREDIT_SCORE_FEEDBACK_TOKEN="not-the-admin-token"),
               free_port(), tmp / "st-server.log")
    try:
        proc = subprocess.run(
            [exe, "run", f"{s.base}/openapi.json", "--checks", "all", "--exclude-checks", "positive_data_acceptance",
             "--max-examples", "25", "--phases", "examples,coverage,fuzzing", "--seed", "1",
             "--header", "Authorization: Bearer not-the-admin-token", "--no-color"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    finally:
        s.stop()
    summary = proc.stdout[-4000:]
    assert proc.returncode == 0, summary
    assert "Tested: 17" in proc.stdout and "generated" in proc.stdout
    assert "unhandled error" not in (tmp / "st-server.log").read_text()
