"""The reload loop: a worker whose first registry check failed does not wait a whole interval to become ready."""

from __future__ import annotations

import time

from app.registry import Registry
from app.serving.reload import ModelManager
from tests.helpers import fit_bundle, register_bundle


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
    assert not manager.ready and 1.0 <= time.monotonic() - t0 < 5.0 and "registry unavailable" in manager.last_error
    empty = ModelManager(settings.model_copy(update={"boot_wait": 30.0}))  # the registry answers: no champion
    t0 = time.monotonic()
    empty.boot()
    assert not empty.ready and time.monotonic() - t0 < 5.0
