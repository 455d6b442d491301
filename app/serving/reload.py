"""Models in memory: load the champion (and challenger) verified, follow alias changes, swap atomically.

Each worker process has one :class:`ModelManager`. A daemon thread polls the registry every
``reload_interval`` seconds; when ``champion`` or ``challenger`` points at a new version, the new bundle is
verified (sha256) and loaded beside the old one, made ready to serve (:class:`ServedModel` verifies its numpy
tree walk and builds a forest's exact TreeSHAP explainer as it is constructed: on this thread, never on a
request), then swapped in with one reference assignment. At boot ``create_app`` runs the first check
synchronously, so a worker serves (and reports ready) only once its model is ready too. A request
takes a snapshot (:meth:`snapshot`) at its start and finishes on it even if a swap happens meanwhile. A
version that fails to load or verify is refused: the current model keeps serving and the failure is counted.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from app.config import Settings
from app.core.bundle import BundleError
from app.registry import CHALLENGER, CHAMPION, Registry, RegistryError
from app.serving.model import ServedModel

log = logging.getLogger("credit_score.reload")


@dataclass(frozen=True)
class Snapshot:
    champion: ServedModel | None
    challenger: ServedModel | None


class ModelManager:
    def __init__(self, settings: Settings, registry: Registry | None = None, on_event=None):
        self.settings = settings
        self.registry = registry or Registry(settings)
        self._snap = Snapshot(None, None)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refused: dict[str, str] = {}  # version -> reason, so a bad version is not retried every poll
        self.last_error: str | None = None
        self.on_event = on_event or (lambda kind, **kw: None)

    def snapshot(self) -> Snapshot:
        return self._snap

    @property
    def ready(self) -> bool:
        return self._snap.champion is not None

    def refresh(self) -> bool:
        """Check both aliases once; returns True when anything was swapped in."""
        with self._lock:
            snap = self._snap
            champion = self._follow(CHAMPION, snap.champion)
            challenger = self._follow(CHALLENGER, snap.challenger)
            if champion is snap.champion and challenger is snap.challenger:
                return False
            self._snap = Snapshot(champion, challenger)
            return True

    def _follow(self, alias: str, current: ServedModel | None) -> ServedModel | None:
        try:
            version = self.registry.alias_version(alias)
        except Exception as e:  # registry unreachable: keep serving what we have  # noqa: BLE001
            self.last_error = f"registry unavailable: {type(e).__name__}"
            log.warning("registry check failed; keeping the loaded models",
                        extra={"error.type": type(e).__name__, "model.alias": alias})
            return current
        if version is None:
            if alias == CHALLENGER:
                return None  # challenger removed (e.g. promoted): stop routing to it
            return current  # never drop a champion because the alias vanished
        if current is not None and current.version == version:
            return current
        if version in self.refused:
            return current
        try:
            info, bundle = self.registry.load(version)
        except (BundleError, RegistryError, OSError, ValueError) as e:
            reason = str(e)
            self.refused[version] = reason
            self.last_error = reason
            log.error("refused model version", extra={"model.version": version, "model.alias": alias,
                                                      "error.message": reason})
            self.on_event("refused", alias=alias, version=version)
            return current
        model = ServedModel(bundle=bundle, name=self.registry.name, version=info.version, alias=alias,
                            tags=info.tags)
        log.info("model loaded", extra={"model.version": version, "model.alias": alias,
                                        "model.previous_version": current.version if current else None})
        self.on_event("loaded", alias=alias, version=version)
        return model

    def boot(self) -> None:
        """The first check, retried every half second for up to ``boot_wait`` seconds while the registry cannot
        be read: a worker that starts serving without its model answers 503 to the requests a load balancer
        sends it because a sibling's /ready said 200. No retry when the registry answers (no champion yet)."""
        deadline = time.monotonic() + self.settings.boot_wait
        while True:
            self.last_error = None
            self.refresh()
            if self.ready or self.last_error is None or time.monotonic() >= deadline:
                return
            time.sleep(0.5)

    # ---- background polling --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="model-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def next_check_in(self) -> float:
        """Seconds to the next alias check: ``reload_interval``, but at most a second while no champion is loaded.
        A worker whose first check failed (another worker creating the store's tables, a registry still starting)
        would otherwise answer 503 for a whole interval while its siblings serve."""
        return self.settings.reload_interval if self.ready else min(1.0, self.settings.reload_interval)

    def _run(self) -> None:
        while not self._stop.wait(self.next_check_in()):
            t0 = time.perf_counter()
            try:
                self.refresh()
            except Exception:  # the poller must never die  # noqa: BLE001
                log.exception("model refresh failed")
            log.debug("alias check", extra={"event.duration": int((time.perf_counter() - t0) * 1e9)})
