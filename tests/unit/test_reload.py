"""The reload loop: a worker whose first registry check failed does not wait a whole interval to become ready;
a version that fails to load for any reason (here: its artifacts are gone) is refused, retried with back-off,
and never blocks the champion; /ready names a reason class, never a path or an address."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from app import create_app
from app.config import Settings
from app.registry import Registry
from app.serving.reload import ModelManager
from tests.conftest import make_settings
from tests.helpers import fit_bundle, register_bundle
from tests.stores import clone_models_dir


class FailsFirst(Registry):
    """The real registry, whose first alias lookup fails as a store being migrated by another worker does."""

    calls = 0

    def alias_version(self, alias):
        FailsFirst.calls += 1
        if FailsFirst.calls == 1:
            raise OSError("database is locked")
        return super().alias_version(alias)


def test_a_failed_first_check_is_retried_within_a_second(settings, schema, small_frame, tmp_path):
    version = register_bundle(settings, fit_bundle(schema, small_frame.head(600)), tmp_path)
    Registry(settings).promote(version, "champion")
    settings = settings.model_copy(update={"reload_interval": 60.0})
    FailsFirst.calls = 0
    manager = ModelManager(settings, registry=FailsFirst(settings))
    manager.refresh()
    assert not manager.ready and manager.next_check_in() <= 1.0, manager.last_error
    manager.start()
    try:
        deadline = time.monotonic() + 15
        while not manager.ready and time.monotonic() < deadline:
            time.sleep(0.05)
        assert manager.ready, "the worker waited for the full reload interval after a failed first check"
        assert manager.next_check_in() == 60.0  # once a champion is loaded, the configured interval
    finally:
        manager.stop()


def test_boot_retries_a_failed_first_check_before_serving(settings, schema, small_frame, tmp_path):
    version = register_bundle(settings, fit_bundle(schema, small_frame.head(600)), tmp_path)
    Registry(settings).promote(version, "champion")
    FailsFirst.calls = 0
    manager = ModelManager(settings.model_copy(update={"boot_wait": 10.0}), registry=FailsFirst(settings))
    manager.boot()  # no background thread: the worker serves only once this returns
    assert manager.ready and FailsFirst.calls >= 2, manager.last_error


class AlwaysFails(Registry):
    def alias_version(self, alias):
        raise OSError("unable to open database file")


def test_boot_gives_up_after_boot_wait_and_does_not_wait_for_a_missing_champion(settings):
    manager = ModelManager(settings.model_copy(update={"boot_wait": 1.0}), registry=AlwaysFails(settings))
    t0 = time.monotonic()
    manager.boot()
    assert not manager.ready and 1.0 <= time.monotonic() - t0 < 5.0 and manager.last_error == "registry unavailable"
    empty = ModelManager(settings.model_copy(update={"boot_wait": 30.0}))  # the registry answers: no champion
    t0 = time.monotonic()
    empty.boot()
    assert not empty.ready and time.monotonic() - t0 < 5.0


# ---- refusal: whatever breaks a version refuses it, never the worker ------------------------------------
@pytest.fixture(scope="module")
def broken_store(tmp_path_factory, schema, small_frame):
    """v1 (champion, sound) and v2, whose artifact directory is gone (MLflow raises MlflowException)."""
    tmp = tmp_path_factory.mktemp("broken-store")
    settings = make_settings(tmp)
    v1 = register_bundle(settings, fit_bundle(schema, small_frame.head(600)), tmp)
    v2 = register_bundle(settings, fit_bundle(schema, small_frame.head(600), seed=1), tmp)
    reg = Registry(settings)
    reg.promote(v1, "champion")
    location = reg.client.get_model_version_download_uri(settings.model_name, v2)
    shutil.rmtree(Path(location.removeprefix("file://")))
    return tmp


@pytest.fixture
def broken(broken_store, tmp_path):
    """A copy of the broken store: the test may move aliases."""
    clone_models_dir(broken_store / "models", tmp_path / "models")
    return Settings(models_dir=tmp_path / "models", reports_dir=tmp_path / "reports")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_missing_artifacts_refuse_the_version_and_the_champion_keeps_serving(broken):
    from mlflow.exceptions import MlflowException

    events, clock = [], Clock()
    settings = broken.model_copy(update={"refused_retry_min": 60.0, "refused_retry_max": 200.0})
    manager = ModelManager(settings, on_event=lambda kind, **kw: events.append((kind, kw["version"])), clock=clock)
    manager.refresh()
    assert manager.snapshot().champion.version == "1"
    Registry(settings).promote("2", "champion")
    manager.refresh()  # MlflowException ("No such artifact") is neither a BundleError nor an OSError
    assert manager.snapshot().champion.version == "1" and events[-1] == ("refused", "2")
    assert manager.refused["2"].error_type == MlflowException.__name__ and manager.refused["2"].failures == 1
    for _ in range(5):  # inside the back-off: not tried again, not counted again
        manager.refresh()
    assert events.count(("refused", "2")) == 1
    # after the back-off it is tried again, and the next back-off is twice as long, up to the maximum
    for failures, backoff in ((2, 120.0), (3, 200.0), (4, 200.0)):
        clock.now = manager.refused["2"].retry_at
        manager.refresh()
        assert manager.refused["2"].failures == failures and manager.refused["2"].retry_at == clock.now + backoff
    assert events.count(("refused", "2")) == 4 and manager.snapshot().champion.version == "1"


def test_a_broken_challenger_never_blocks_the_champion_at_boot(broken):
    Registry(broken).promote("2", "challenger")
    app = create_app({"models_dir": broken.models_dir, "reports_dir": broken.reports_dir}, start_reload=False)
    snap = app.extensions["credit_score"].manager.snapshot()
    assert snap.champion.version == "1" and snap.challenger is None
    r = app.test_client().get("/ready")
    assert r.status_code == 200 and r.json["model"]["version"] == "1"


def test_ready_names_a_reason_class_without_paths_or_addresses(broken, tmp_path):
    Registry(broken).promote("2", "champion")  # the only champion is broken: nothing to serve
    settings = {"models_dir": broken.models_dir, "reports_dir": broken.reports_dir, "boot_wait": 0.0}
    app = create_app(settings, start_reload=False)
    r = app.test_client().get("/ready")
    assert r.status_code == 503 and r.json == {"status": "not ready", "ready": False, "reason": "model refused"}
    manager = app.extensions["credit_score"].manager
    assert manager.refused["2"].retry_at - manager.clock() <= broken.reload_interval  # nothing served: retry soon

    # the registry cannot be read (AlwaysFails raises "unable to open database file"): no path, no text
    down = create_app(settings, start_reload=False,
                      manager=ModelManager(broken.model_copy(update={"boot_wait": 0.0}), registry=AlwaysFails(broken)))
    r = down.test_client().get("/ready")
    assert r.status_code == 503 and r.json["reason"] == "registry unavailable"
    assert str(tmp_path) not in r.get_data(as_text=True) and "database" not in r.get_data(as_text=True)
