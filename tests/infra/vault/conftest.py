"""Fixtures for the Vault tests: one shared OpenBao dev server set up by vault/setup.sh, a fake Kubernetes
TokenReview API, and a DEBUG log of everything these tests do (searched for secret values at the end)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.infra.vault import helpers as h

LEAK_TEST_FILE = "test_no_secret_in_logs.py"
VERBOSE_LOGGERS = ("hvac", "urllib3", "requests", "credit_score", "app", "werkzeug", "flask.app")


def pytest_collection_modifyitems(config, items):
    """The leak search runs after every other test of this package (it reads the logs they produced)."""
    here = Path(__file__).parent
    idx = [i for i, item in enumerate(items) if here in item.path.parents]
    ours = sorted((items[i] for i in idx), key=lambda item: item.path.name == LEAK_TEST_FILE)
    for i, item in zip(idx, ours, strict=True):
        items[i] = item


class LogCapture:
    """Root-logger records at DEBUG (hvac, urllib3 included) written to one file for the whole package."""

    def __init__(self, path: Path):
        self.path = path
        self.handler = logging.FileHandler(path, encoding="utf-8")
        self.handler.setLevel(logging.DEBUG)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        self.root = logging.getLogger()
        self._saved: list[tuple[logging.Logger, int]] = []

    def install(self) -> None:
        self.root.addHandler(self.handler)
        self.boost()

    def boost(self) -> None:
        """(Re)set DEBUG on the root and the HTTP/Vault loggers: create_app's logging set-up lowers them."""
        for lg in (self.root, *map(logging.getLogger, VERBOSE_LOGGERS)):
            self._saved.append((lg, lg.level))
            lg.setLevel(logging.DEBUG)

    def text(self) -> str:
        self.handler.flush()
        return self.path.read_text(encoding="utf-8")

    def remove(self) -> None:
        self.root.removeHandler(self.handler)
        self.handler.close()
        for lg, level in reversed(self._saved):
            lg.setLevel(level)


@pytest.fixture(scope="package", autouse=True)
def vault_logs(tmp_path_factory):
    cap = LogCapture(tmp_path_factory.mktemp("vault-logs") / "tests-debug.log")
    cap.install()
    yield cap
    cap.remove()


@pytest.fixture(scope="package")
def k8s_api(tmp_path_factory):
    fake = h.FakeKubernetes(tmp_path_factory.mktemp("fake-k8s"))
    yield fake
    fake.close()


@pytest.fixture(scope="package")
def seeds() -> dict[str, str]:
    return h.fresh_app_values()


@pytest.fixture(scope="package")
def bao(tmp_path_factory, seeds, k8s_api):
    """An OpenBao dev server on 127.0.0.1, configured by vault/setup.sh (seeded with `seeds`)."""
    server = h.start_bao(tmp_path_factory.mktemp("bao"))
    try:
        h.run_setup(server.addr, server.root_token, server.workdir / "setup.log",
                    {**h.seed_env(seeds), "VAULT_K8S_HOST": k8s_api.url, "VAULT_K8S_CA_CERT": str(k8s_api.ca)})
        yield server
    finally:
        server.stop()


@pytest.fixture
def bao_factory(tmp_path):
    """Start extra servers (outage and restart tests); all stopped at the end of the test."""
    started: list[h.BaoServer] = []

    def start(name: str = "extra") -> h.BaoServer:
        server = h.start_bao(tmp_path / name)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def app_values(bao) -> dict[str, str]:
    """Fresh values written to credit-score/app for this test (tests do not depend on each other's writes)."""
    values = h.fresh_app_values()
    h.put_app_values(bao, values)
    return values


@pytest.fixture
def providers():
    """Providers built by a test, closed at its end."""
    made = []
    yield made
    for p in made:
        p.close()
