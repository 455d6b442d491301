"""Models in memory: load the champion (and challenger) verified, follow alias changes, swap atomically.

Each worker process has one :class:`ModelManager`. A daemon thread polls the registry every
``reload_interval`` seconds; when ``champion`` or ``challenger`` points at a new version, the new bundle is
verified (sha256) and loaded beside the old one, made ready to serve (:class:`ServedModel` verifies its numpy
tree walk and builds a forest's exact TreeSHAP explainer as it is constructed: on this thread, never on a
request), then swapped in with one reference assignment. At boot ``create_app`` runs the first check
synchronously, so a worker serves (and reports ready) only once its model is ready too. A request
takes a snapshot (:meth:`snapshot`) at its start and finishes on it even if a swap happens meanwhile.

A version that fails to load for any reason (a bundle that does not verify, missing artifacts, an artifact
store that is down, an exception while the model is made ready) is refused: the failure is logged and counted,
the current model keeps serving, and the version is tried again only after a back-off (``refused_retry_min``
seconds, doubled after each further failure up to ``refused_retry_max``; at most ``reload_interval`` while no
champion is loaded at all, so a worker whose artifact store blinked at boot does not wait an hour). A broken
challenger therefore never blocks the champion, and a worker boots and serves the champion whatever else is
aliased. :attr:`ModelManager.last_error` holds a short reason class only (``registry unavailable``,
``model refused``): never a path, an address or an exception's text, so ``/ready`` can show it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.config import Settings
from app.registry import CHALLENGER, CHAMPION, Registry
from app.serving.model import ServedModel

log = logging.getLogger("credit_score.reload")

REGISTRY_UNAVAILABLE = "registry unavailable"
MODEL_REFUSED = "model refused"
NO_CHAMPION = "no champion"


@dataclass(frozen=True)
class Refusal:
    """Why a version was refused (for the logs, never for a response), how often, and when to try it again."""

    error_type: str
    failures: int
    retry_at: float  # on the manager's clock (monotonic)


@dataclass(frozen=True)
class Snapshot:
    champion: ServedModel | None
    challenger: ServedModel | None


class ModelManager:
    def __init__(self, settings: Settings, registry: Registry | None = None, on_event=None,
                 before_check: Callable[[], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.registry = registry or Registry(settings)
        self._snap = Snapshot(None, None)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refused: dict[str, Refusal] = {}  # version -> refusal: not retried before its back-off ends
        self.last_error: str | None = None  # a reason class of the last check (REGISTRY_UNAVAILABLE, ...)
        self.on_event = on_event or (lambda kind, **kw: None)
        # run before every check (e.g. hand the registry credentials, rotated in Vault, to the MLflow client)
        self.before_check = before_check or (lambda: None)
        self.clock = clock

    def snapshot(self) -> Snapshot:
        return self._snap

    @property
    def ready(self) -> bool:
        return self._snap.champion is not None

    def refresh(self) -> bool:
        """Check both aliases once; returns True when anything was swapped in."""
        with self._lock:
            self.last_error = None
            try:
                self.before_check()
            except Exception as e:  # noqa: BLE001 (credentials unavailable: the check below says so)
                log.warning("before-check hook failed", extra={"error.type": type(e).__name__})
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
            self.last_error = REGISTRY_UNAVAILABLE
            log.warning("registry check failed; keeping the loaded models",
                        extra={"error.type": type(e).__name__, "model.alias": alias})
            return current
        if version is None:
            if alias == CHALLENGER:
                return None  # challenger removed (e.g. promoted): stop routing to it
            return current  # never drop a champion because the alias vanished
        if current is not None and current.version == version:
            return current
        refusal = self.refused.get(version)
        if refusal is not None and self.clock() < refusal.retry_at:
            if alias == CHAMPION:
                self.last_error = MODEL_REFUSED
            return current
        try:
            info, bundle = self.registry.load(version)
            model = ServedModel(bundle=bundle, name=self.registry.name, version=info.version, alias=alias,
                                tags=info.tags)
        except Exception as e:  # noqa: BLE001 (whatever breaks a version refuses it, never the worker)
            self._refuse(alias, version, e, nothing_served=current is None and alias == CHAMPION)
            return current
        self.refused.pop(version, None)
        log.info("model loaded", extra={"model.version": version, "model.alias": alias,
                                        "model.previous_version": current.version if current else None})
        self.on_event("loaded", alias=alias, version=version)
        return model

    def _refuse(self, alias: str, version: str, error: Exception, nothing_served: bool) -> None:
        previous = self.refused.get(version)
        failures = previous.failures + 1 if previous else 1
        s = self.settings
        delay = min(s.refused_retry_min * 2 ** min(failures - 1, 30), s.refused_retry_max)
        if nothing_served:  # no champion at all: retrying costs nothing that serving would need
            delay = min(delay, s.reload_interval)
        self.refused[version] = Refusal(type(error).__name__, failures, self.clock() + delay)
        if alias == CHAMPION:
            self.last_error = MODEL_REFUSED
        log.error("refused model version", extra={
            "model.version": version, "model.alias": alias, "error.type": type(error).__name__,
            "error.message": str(error), "model.refusals": failures, "model.retry_in_s": round(delay, 1)})
        self.on_event("refused", alias=alias, version=version)

    def boot(self) -> None:
        """The first check, retried every half second for up to ``boot_wait`` seconds while the registry cannot
        be read: a worker that starts serving without its model answers 503 to the requests a load balancer
        sends it because a sibling's /ready said 200. No retry when the registry answers (no champion yet, or
        the champion refused: its back-off decides when it is tried again). Never raises."""
        deadline = time.monotonic() + self.settings.boot_wait
        while True:
            self.refresh()
            if self.ready or self.last_error != REGISTRY_UNAVAILABLE or time.monotonic() >= deadline:
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
