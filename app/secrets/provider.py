"""The service's access to its secrets: cached Vault values, staleness, the environment fallback, health.

:class:`SecretProvider` decides *what* to answer (fresh values, last good values within ``max_stale``, the
allowed environment fallback, or None); :class:`app.secrets.session.VaultSession` does the talking to Vault.
Time comes from the injected ``clock`` (default :func:`time.monotonic`), so tests can drive TTLs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from app.config.vault import VaultSettings
from app.secrets.errors import SecretsUnavailable
from app.secrets.fallback import SECRET_NAMES, from_environment
from app.secrets.redaction import Redactor, register
from app.secrets.session import VaultSession

log = logging.getLogger("credit_score.secrets")


class _Entry:
    __slots__ = ("data", "fetched")

    def __init__(self, data: dict[str, str], fetched: float):
        self.data = data
        self.fetched = fetched


class SecretProvider:
    """Thread-safe access to the service's secrets. Build it with :func:`app.secrets.build_provider`."""

    def __init__(self, settings: VaultSettings, *, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self._clock = clock
        self._lock = threading.RLock()
        self._redactor = Redactor()
        self.stats = {"logins": 0, "renewals": 0, "reauths": 0, "reads": 0, "failures": 0, "fallbacks": 0}
        self.session = VaultSession(settings, clock, self._redactor.remember, self._redactor.redact, self.stats)
        self._cache: dict[str, _Entry] = {}
        self._healthy = False
        self._last_error: str | None = None
        self._retry_at = 0.0
        self._closed = False
        self._warned: set[str] = set()
        for s in (settings.token, settings.role_id, settings.secret_id):
            if s is not None:
                self._redactor.remember(s.get_secret_value())
        register(self)

    def __repr__(self) -> str:
        s = self.settings
        return (f"SecretProvider(auth={s.auth!r}, addr={s.addr!r}, path={s.mount + '/' + s.path!r}, "
                f"env={s.env!r}, healthy={self._healthy})")

    # ---- public API --------------------------------------------------------------------------------------
    @property
    def vault_enabled(self) -> bool:
        return self.settings.auth != "none" and not self._closed

    def get(self, name: str) -> str | None:
        """The secret ``name``: from Vault (cached for the TTL), else the allowed environment fallback, else None.

        Never raises for availability: a caller that gets None must fail closed (deny the request).
        """
        path, key = self._locate(name)
        reason = "Vault is not configured (CREDIT_SCORE_VAULT_AUTH=none)"
        if self.vault_enabled:
            data = self._data(path)
            if data is not None:
                value = data.get(key)
                if value:
                    return value
                reason = f"key {key!r} is missing at {self.settings.mount}/{path}"
            else:
                reason = f"Vault is unavailable ({self._last_error})"
        if not self.settings.env_fallback:
            return None
        found = from_environment(name)
        if found is None:
            return None
        var, value = found
        self._redactor.remember(value)
        if self.vault_enabled:
            self._warn_once(f"fallback:{name}:{reason}",
                            "secret %s comes from the environment variable %s: %s", name, var, reason)
            self.stats["fallbacks"] += 1
        return value

    def check(self) -> None:
        """Contact Vault now (log in, read every configured path); fail closed in production.

        Raises SecretsUnavailable in production mode when Vault cannot be reached or authenticated (or is not
        configured) and the environment fallback was not explicitly allowed. Elsewhere it logs a warning.
        """
        s = self.settings
        strict = s.production and not s.env_fallback
        if not self.vault_enabled:
            if strict:
                raise SecretsUnavailable(
                    "production mode reads secrets from Vault, but CREDIT_SCORE_VAULT_AUTH is 'none': set VAULT_ADDR "
                    "and CREDIT_SCORE_VAULT_AUTH (approle|kubernetes|token), or allow the environment fallback "
                    "explicitly with CREDIT_SCORE_VAULT_ENV_FALLBACK=true")
            level = logging.WARNING if s.production else logging.INFO
            log.log(level, "Vault is not configured: secrets come from environment variables (%s mode)", s.env)
            return
        if s.production:
            self._production_warnings()
        try:
            with self._lock:
                for path in self._paths():
                    self._refresh(path)
        except SecretsUnavailable as e:
            if strict:
                raise SecretsUnavailable(f"production mode requires Vault and it is not usable: {e}") from e
            where = "environment variables" if s.env_fallback else "nothing (the fallback is disabled)"
            log.warning("Vault is not usable (%s); secrets fall back to %s until it answers", e, where)
            return
        missing = [n for n in SECRET_NAMES if self._cached_value(n) is None]
        if missing:
            log.warning("Vault has no value for %s at the configured paths", ", ".join(missing))

    @property
    def healthy(self) -> bool:
        """True when the configured source can serve secrets now.

        With Vault: the last contact succeeded and its values are within their TTL; a stale cache triggers one
        refresh (network at most once per TTL, with a back-off after failures). Without Vault: True unless
        production mode forbids the environment fallback.
        """
        if not self.vault_enabled:
            return not (self.settings.production and not self.settings.env_fallback)
        with self._lock:
            path = self._paths()[0]
            entry = self._cache.get(path)
            if entry is None or self._clock() - entry.fetched >= self.settings.ttl:
                self._data(path)
            return self._healthy

    def status(self) -> dict[str, Any]:
        """What /ready or a CLI can show: source, health, last error, counters. No secret values."""
        s = self.settings
        source = "vault" if self.vault_enabled else "environment"
        return {"source": source, "auth": s.auth, "addr": s.addr, "path": f"{s.mount}/{s.path}", "env": s.env,
                "env_fallback": s.env_fallback, "healthy": self.healthy, "last_error": self._last_error,
                "stats": dict(self.stats)}

    def close(self) -> None:
        """Forget cached values; revoke a token this provider obtained by logging in. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._cache.clear()
            self.session.close()

    def redact(self, text: str) -> str:
        """``text`` with every secret value this provider has seen (current or rotated away) replaced."""
        return self._redactor.redact(text)

    # ---- internals: where names live -----------------------------------------------------------------------
    def _locate(self, name: str) -> tuple[str, str]:
        target = self.settings.secrets.get(name)
        if target:
            path, _, key = target.partition("#")
            return path.strip("/"), key
        return self.settings.path, name

    def _paths(self) -> list[str]:
        paths = [self.settings.path]
        for name in self.settings.secrets:
            p = self._locate(name)[0]
            if p not in paths:
                paths.append(p)
        return paths

    def _cached_value(self, name: str) -> str | None:
        path, key = self._locate(name)
        entry = self._cache.get(path)
        return entry.data.get(key) if entry else None

    # ---- internals: cache and staleness ----------------------------------------------------------------------
    def _data(self, path: str) -> dict[str, str] | None:
        """The values at ``path``: fresh, refreshed, stale within ``max_stale``, or None."""
        with self._lock:
            now = self._clock()
            entry = self._cache.get(path)
            if entry is not None and now - entry.fetched < self.settings.ttl:
                return entry.data
            if now >= self._retry_at:
                try:
                    return self._refresh(path)
                except SecretsUnavailable:
                    pass  # logged in _refresh
            if entry is not None and now - entry.fetched < self.settings.ttl + self.settings.max_stale:
                self._warn_once(f"stale:{path}", "serving the last values read from %s/%s (stale since %.0f s) "
                                "while Vault is unavailable", self.settings.mount, path,
                                now - entry.fetched - self.settings.ttl)
                return entry.data
            if entry is not None:
                del self._cache[path]  # too old: fail closed (or fall back where allowed)
                log.error("values from %s/%s are older than their TTL + CREDIT_SCORE_VAULT_MAX_STALE (%.0f s) "
                          "and Vault is still unavailable: not serving them", self.settings.mount, path,
                          self.settings.max_stale)
            return None

    def _refresh(self, path: str) -> dict[str, str]:
        """Read ``path`` now; records health; raises SecretsUnavailable (already logged)."""
        try:
            data = self.session.read(path)
        except SecretsUnavailable as e:
            msg = self.redact(str(e))
            if self._healthy or self._last_error != msg:
                log.warning("Vault read of %s/%s failed: %s", self.settings.mount, path, msg)
            self._healthy = False
            self._last_error = msg
            self.stats["failures"] += 1
            self._retry_at = self._clock() + min(5.0, max(self.settings.ttl, 0.5))
            raise
        if not self._healthy and self._last_error is not None:
            log.info("Vault at %s answers again", self.settings.addr)
        self._healthy = True
        self._last_error = None
        self._retry_at = 0.0
        self._warned = {w for w in self._warned if not w.startswith(("stale:", "fallback:"))}
        self._cache[path] = _Entry(data, self._clock())
        return data

    # ---- internals: warnings ---------------------------------------------------------------------------------
    def _warn_once(self, key: str, msg: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args)

    def _production_warnings(self) -> None:
        s = self.settings
        host = urlsplit(s.addr or "").hostname or ""
        if s.skip_verify:
            self._warn_once("skip_verify", "VAULT_SKIP_VERIFY is set in production: Vault's TLS certificate is "
                            "not verified")
        if (s.addr or "").startswith("http://") and host not in ("127.0.0.1", "localhost", "::1"):
            self._warn_once("plain_http", "VAULT_ADDR uses plain http in production: tokens and secrets cross the "
                            "network unencrypted")
        if s.auth == "token":
            self._warn_once("token_auth", "token auth in production: the token cannot be renewed past its max TTL "
                            "nor replaced after revocation; prefer approle or kubernetes")
