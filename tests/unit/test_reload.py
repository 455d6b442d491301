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
