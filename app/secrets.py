"""Secrets from Vault or OpenBao (through hvac), cached, with a declared environment fallback.

Where the values live
    One KV v2 secret, ``<mount>/<path>`` (default ``secret/credit-score/app``), holds the keys
    ``admin_token``, ``feedback_token``, ``database_url``, ``mlflow_username`` and ``mlflow_password``.
    ``CREDIT_SCORE_VAULT_SECRETS="mlflow_password=credit-score/mlflow#password,..."`` moves single names to
    other paths (the policy in ``vault/policies/`` must then allow them).

How the service authenticates (``CREDIT_SCORE_VAULT_AUTH``)
    ``none``        no Vault: environment variables only (development; production refuses unless the fallback
                    is explicitly allowed).
    ``token``       ``VAULT_TOKEN`` as given (development, tests). Renewed while renewable; it cannot log in again.
    ``approle``     ``CREDIT_SCORE_VAULT_ROLE_ID`` + ``CREDIT_SCORE_VAULT_SECRET_ID`` (or ``..._SECRET_ID_FILE``,
                    re-read at every login): VMs provisioned by Ansible, Jenkins.
    ``kubernetes``  the pod's service-account JWT (``CREDIT_SCORE_VAULT_K8S_TOKEN_PATH``, re-read at every
                    login) for the role ``CREDIT_SCORE_VAULT_K8S_ROLE``.

Behaviour (the contract the tests check against a real OpenBao server)
    * Nothing happens at import or in :func:`build_provider`: the first :meth:`SecretProvider.get`,
      :meth:`SecretProvider.check` or :attr:`SecretProvider.healthy` logs in.
    * Values are cached for ``CREDIT_SCORE_VAULT_TTL`` seconds (default 60): a rotated secret is picked up at
      most one TTL later.
    * The token is renewed (``renew-self``) once less than a third of its TTL is left; when it cannot be
      renewed any more (max TTL) or Vault answers 401/403 (revoked, expired), AppRole and Kubernetes log in
      again once and retry; a static ``token`` cannot, and the provider reports the failure.
    * Vault unreachable or refusing: the last good values are served for ``CREDIT_SCORE_VAULT_MAX_STALE``
      seconds more (default 300, counted from the end of their TTL) while :attr:`healthy` is False; after
      that, or when nothing was ever read, ``get`` returns None (callers fail closed: the admin endpoint
      answers 403) unless the environment fallback is allowed.
    * The environment fallback (``CREDIT_SCORE_ADMIN_TOKEN``, ``CREDIT_SCORE_FEEDBACK_TOKEN``,
      ``CREDIT_SCORE_DATABASE_URL``, ``CREDIT_SCORE_MLFLOW_USERNAME``/``MLFLOW_TRACKING_USERNAME``,
      ``CREDIT_SCORE_MLFLOW_PASSWORD``/``MLFLOW_TRACKING_PASSWORD``) is used only when
      ``CREDIT_SCORE_VAULT_ENV_FALLBACK`` allows it: by default in development, never by default in
      production. Using it while Vault is configured logs a warning.
    * :meth:`check` raises :class:`SecretsUnavailable` in production (without an explicit fallback) when Vault
      cannot be reached or authenticated: the serving command exits non-zero, readiness answers 503.
      ``python -m app.secrets check`` does the same from a shell (exit 0 ok, 1 unavailable, 2 bad settings).
    * Secret values, tokens and secret IDs never appear in log messages or exception messages; every value
      the provider has seen is known to :meth:`SecretProvider.redact` and :class:`SecretRedactingFilter`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator, model_validator

from app.monitoring.logging import LINES

log = logging.getLogger("credit_score.secrets")

SECRET_NAMES = ("admin_token", "feedback_token", "database_url", "mlflow_username", "mlflow_password")
DEFAULT_K8S_TOKEN_PATH = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
REDACTED = "[REDACTED]"
_MIN_REDACT_LEN = 4  # shorter strings are not treated as secrets (they would mangle every log line)
_SEEN_LIMIT = 256  # values remembered for redaction (current and rotated-away ones)

# environment variables consulted for a name when the fallback is allowed (first non-empty wins)
_EXTRA_ENV = {
    "mlflow_username": ("MLFLOW_TRACKING_USERNAME",),
    "mlflow_password": ("MLFLOW_TRACKING_PASSWORD",),
}


def env_names(name: str) -> tuple[str, ...]:
    """Environment variables that may hold ``name`` when the fallback is allowed."""
    return (f"CREDIT_SCORE_{name.upper()}", *_EXTRA_ENV.get(name, ()))


class SecretsUnavailable(RuntimeError):
    """Vault (or the declared fallback) cannot provide secrets. The message never contains a secret value."""


def _parse_bool(value: str, var: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{var} must be true or false, not {value!r}")


class VaultSettings(BaseModel):
    """Everything the provider needs, read once from the environment (:meth:`from_env`).

    These fields are meant to move into :mod:`app.config` later; until then this model is their one home.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    addr: str | None = None  # VAULT_ADDR
    auth: Literal["none", "token", "approle", "kubernetes"] = "none"  # CREDIT_SCORE_VAULT_AUTH
    token: SecretStr | None = None  # VAULT_TOKEN
    role_id: SecretStr | None = None  # CREDIT_SCORE_VAULT_ROLE_ID
    secret_id: SecretStr | None = None  # CREDIT_SCORE_VAULT_SECRET_ID
    secret_id_file: Path | None = None  # CREDIT_SCORE_VAULT_SECRET_ID_FILE (wins over SECRET_ID; re-read per login)
    approle_mount: str = "approle"  # CREDIT_SCORE_VAULT_APPROLE_MOUNT
    k8s_role: str | None = None  # CREDIT_SCORE_VAULT_K8S_ROLE
    k8s_token_path: Path = DEFAULT_K8S_TOKEN_PATH  # CREDIT_SCORE_VAULT_K8S_TOKEN_PATH
    k8s_mount: str = "kubernetes"  # CREDIT_SCORE_VAULT_K8S_MOUNT
    mount: str = "secret"  # CREDIT_SCORE_VAULT_MOUNT (KV v2)
    path: str = "credit-score/app"  # CREDIT_SCORE_VAULT_PATH
    secrets: dict[str, str] = {}  # CREDIT_SCORE_VAULT_SECRETS: name -> "path#key" for names not at `path`
    ttl: float = 60.0  # CREDIT_SCORE_VAULT_TTL (s): cache lifetime of values read from Vault
    max_stale: float = 300.0  # CREDIT_SCORE_VAULT_MAX_STALE (s): serve last good values this long past their TTL
    timeout: float = 5.0  # CREDIT_SCORE_VAULT_TIMEOUT (s): per HTTP request to Vault
    renew_fraction: float = 1 / 3  # renew the token when less than this share of its TTL is left
    cacert: Path | None = None  # VAULT_CACERT: CA bundle for a Vault behind a private CA
    skip_verify: bool = False  # VAULT_SKIP_VERIFY: development only (a warning in production)
    namespace: str | None = None  # VAULT_NAMESPACE (Vault Enterprise / OpenBao namespaces)
    env: Literal["development", "production"] = "development"  # CREDIT_SCORE_ENV
    env_fallback: bool | None = None  # CREDIT_SCORE_VAULT_ENV_FALLBACK; None -> True in development only

    @field_validator("mount", "path", "approle_mount", "k8s_mount")
    @classmethod
    def _strip_slashes(cls, v: str) -> str:
        v = v.strip().strip("/")
        if not v:
            raise ValueError("must not be empty")
        return v

    @field_validator("secrets")
    @classmethod
    def _targets(cls, v: dict[str, str]) -> dict[str, str]:
        for name, target in v.items():
            path, sep, key = target.partition("#")
            if not name or not path.strip("/") or not sep or not key:
                raise ValueError(f"secret {name!r}: expected 'path#key', got {target!r}")
        return v

    @field_validator("ttl", "max_stale", "timeout")
    @classmethod
    def _non_negative(cls, v: float) -> float:
        if v < 0:
            raise ValueError("must not be negative")
        return v

    @field_validator("renew_fraction")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError("must be between 0 and 1")
        return v

    @model_validator(mode="after")
    def _defaults(self) -> VaultSettings:
        if self.env_fallback is None:
            object.__setattr__(self, "env_fallback", self.env == "development")
        if self.auth != "none" and not self.addr:
            raise ValueError(f"CREDIT_SCORE_VAULT_AUTH={self.auth} needs VAULT_ADDR")
        return self

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VaultSettings:
        """Read the settings from ``environ`` (default ``os.environ``); empty variables count as unset.

        Raises ValueError (a pydantic ValidationError) with the variable's problem, never its value when secret.
        """
        env = os.environ if environ is None else environ

        def get(var: str) -> str | None:
            v = env.get(var)
            return v if v is not None and v.strip() != "" else None

        raw: dict[str, Any] = {}
        plain = {
            "addr": "VAULT_ADDR", "auth": "CREDIT_SCORE_VAULT_AUTH",
            "secret_id_file": "CREDIT_SCORE_VAULT_SECRET_ID_FILE",
            "approle_mount": "CREDIT_SCORE_VAULT_APPROLE_MOUNT", "k8s_role": "CREDIT_SCORE_VAULT_K8S_ROLE",
            "k8s_token_path": "CREDIT_SCORE_VAULT_K8S_TOKEN_PATH", "k8s_mount": "CREDIT_SCORE_VAULT_K8S_MOUNT",
            "mount": "CREDIT_SCORE_VAULT_MOUNT", "path": "CREDIT_SCORE_VAULT_PATH", "ttl": "CREDIT_SCORE_VAULT_TTL",
            "max_stale": "CREDIT_SCORE_VAULT_MAX_STALE", "timeout": "CREDIT_SCORE_VAULT_TIMEOUT",
            "cacert": "VAULT_CACERT", "namespace": "VAULT_NAMESPACE", "env": "CREDIT_SCORE_ENV",
        }
        for field, var in plain.items():
            v = get(var)
            if v is not None:
                raw[field] = v.strip().lower() if field in ("auth", "env") else v.strip()
        for field, var in (("token", "VAULT_TOKEN"), ("role_id", "CREDIT_SCORE_VAULT_ROLE_ID"),
                           ("secret_id", "CREDIT_SCORE_VAULT_SECRET_ID")):
            v = get(var)
            if v is not None:
                raw[field] = SecretStr(v.strip())
        for field, var in (("skip_verify", "VAULT_SKIP_VERIFY"), ("env_fallback", "CREDIT_SCORE_VAULT_ENV_FALLBACK")):
            v = get(var)
            if v is not None:
                raw[field] = _parse_bool(v, var)
        mapping = get("CREDIT_SCORE_VAULT_SECRETS")
        if mapping:
            pairs = [p.strip() for p in mapping.split(",") if p.strip()]
            bad = [p for p in pairs if "=" not in p]
            if bad:
                raise ValueError(f"CREDIT_SCORE_VAULT_SECRETS: expected name=path#key items, got {bad}")
            raw["secrets"] = dict(p.split("=", 1) for p in pairs)
        return cls(**raw)


class _Entry:
    __slots__ = ("data", "fetched")

    def __init__(self, data: dict[str, str], fetched: float):
        self.data = data
        self.fetched = fetched


_PROVIDERS: weakref.WeakSet[SecretProvider] = weakref.WeakSet()


class SecretProvider:
    """Thread-safe access to the service's secrets. Build it with :func:`build_provider`."""

    def __init__(self, settings: VaultSettings, *, clock=time.monotonic):
        self.settings = settings
        self._clock = clock
        self._lock = threading.RLock()
        self._client = None  # hvac.Client, created on first use
        self._token_ttl: float | None = None  # the token's TTL when issued (s); None: never expires
        self._token_expires: float | None = None  # clock() at expiry
        self._renewable = False
        self._logged_in = False  # the token came from our own login (AppRole/Kubernetes): we may revoke it
        self._cache: dict[str, _Entry] = {}
        self._healthy = False
        self._last_error: str | None = None
        self._retry_at = 0.0
        self._closed = False
        self._seen: dict[str, None] = {}  # ordered set of values to redact (insertion order = age)
        self._seen_lock = threading.Lock()  # never held while doing anything else: logging may redact any time
        self._redact_values: tuple[str, ...] = ()  # longest first; replaced whole (readers take no lock)
        self._warned: set[str] = set()
        self.stats = {"logins": 0, "renewals": 0, "reauths": 0, "reads": 0, "failures": 0, "fallbacks": 0}
        for s in (settings.token, settings.role_id, settings.secret_id):
            if s is not None:
                self._remember(s.get_secret_value())
        _PROVIDERS.add(self)

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
        for var in env_names(name):
            value = os.environ.get(var)
            if value:
                self._remember(value)
                if self.vault_enabled:
                    self._warn_once(f"fallback:{name}:{reason}",
                                    "secret %s comes from the environment variable %s: %s", name, var, reason)
                    self.stats["fallbacks"] += 1
                return value
        return None

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
            client, self._client = self._client, None
            self._cache.clear()
            if client is not None:
                if self._logged_in:
                    try:
                        client.auth.token.revoke_self()
                    except Exception as e:  # best effort: the token expires by itself
                        log.debug("could not revoke the Vault token on close: %s", type(e).__name__)
                with contextlib.suppress(Exception):  # closing a session must not fail the shutdown
                    client.adapter.close()

    def redact(self, text: str) -> str:
        """``text`` with every secret value this provider has seen (current or rotated away) replaced."""
        if not text:
            return text
        for v in self._redact_values:
            if v in text:
                text = text.replace(v, REDACTED)
        return text

    # ---- internals: cache ----------------------------------------------------------------------------------
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
            data = self._read(path)
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

    def _remember(self, value: str) -> None:
        if len(value) < _MIN_REDACT_LEN or value in self._seen:
            return
        with self._seen_lock:
            self._seen[value] = None
            while len(self._seen) > _SEEN_LIMIT:
                self._seen.pop(next(iter(self._seen)))
            self._redact_values = tuple(sorted(self._seen, key=len, reverse=True))

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

    # ---- internals: Vault -----------------------------------------------------------------------------------
    def _new_client(self):
        import hvac

        s = self.settings
        verify: bool | str = str(s.cacert) if s.cacert else not s.skip_verify
        # token="" keeps hvac from picking VAULT_TOKEN or ~/.vault-token up on its own
        return hvac.Client(url=s.addr, token="", verify=verify, timeout=s.timeout, namespace=s.namespace)

    def _unavailable(self, action: str, e: BaseException) -> SecretsUnavailable:
        """A clear message for a failure; hvac's text is redacted, requests' (URLs, reasons) kept short."""
        import hvac.exceptions as hx
        import requests

        s = self.settings
        if isinstance(e, requests.exceptions.SSLError):
            detail = "TLS verification failed (set VAULT_CACERT to the CA that signed Vault's certificate)"
        elif isinstance(e, requests.exceptions.Timeout):
            detail = f"no answer within {s.timeout:g} s"
        elif isinstance(e, requests.exceptions.ConnectionError):
            detail = "cannot connect (is the server running and VAULT_ADDR right?)"
        elif isinstance(e, hx.VaultDown):
            detail = "Vault is sealed or in standby (503)"
        elif isinstance(e, hx.VaultError):
            errors = e.errors if isinstance(e.errors, list) else [e.args[0] if e.args else ""]
            detail = f"{type(e).__name__}: " + "; ".join(str(x) for x in errors if x)
        elif isinstance(e, OSError):
            detail = f"{type(e).__name__}: {e.strerror or e}"
        else:
            detail = type(e).__name__
        detail = " ".join(detail.split())  # server errors come with newlines and tabs
        return SecretsUnavailable(self.redact(f"{action} at {s.addr} failed: {detail}"))

    def _login(self) -> None:
        """Authenticate with the configured method; on success the client holds a fresh token."""
        import hvac.exceptions as hx
        import requests

        s = self.settings
        if self._client is None:
            self._client = self._new_client()
        client = self._client
        try:
            if s.auth == "token":
                if s.token is None:
                    raise SecretsUnavailable("CREDIT_SCORE_VAULT_AUTH=token needs VAULT_TOKEN")
                client.token = s.token.get_secret_value()
                info = client.auth.token.lookup_self()["data"]
                ttl = float(info.get("ttl") or 0)
                creation = float(info.get("creation_ttl") or ttl)
                self._set_token_times(ttl, creation, bool(info.get("renewable")))
                self._logged_in = False
                what = "token"
            elif s.auth == "approle":
                if s.role_id is None:
                    raise SecretsUnavailable("CREDIT_SCORE_VAULT_AUTH=approle needs CREDIT_SCORE_VAULT_ROLE_ID")
                secret_id = self._approle_secret_id()
                resp = client.auth.approle.login(role_id=s.role_id.get_secret_value(), secret_id=secret_id,
                                                 mount_point=s.approle_mount)
                self._from_auth(resp)
                what = f"AppRole login ({s.approle_mount})"
            elif s.auth == "kubernetes":
                if not s.k8s_role:
                    raise SecretsUnavailable("CREDIT_SCORE_VAULT_AUTH=kubernetes needs CREDIT_SCORE_VAULT_K8S_ROLE")
                try:
                    jwt = s.k8s_token_path.read_text().strip()
                except OSError as e:
                    raise SecretsUnavailable(
                        f"cannot read the Kubernetes service-account token {s.k8s_token_path}: "
                        f"{e.strerror or type(e).__name__}") from e
                if not jwt:
                    raise SecretsUnavailable(f"the Kubernetes service-account token {s.k8s_token_path} is empty")
                self._remember(jwt)
                resp = client.auth.kubernetes.login(role=s.k8s_role, jwt=jwt, mount_point=s.k8s_mount)
                self._from_auth(resp)
                what = f"Kubernetes login as role {s.k8s_role!r} ({s.k8s_mount})"
            else:  # pragma: no cover (guarded by vault_enabled)
                raise SecretsUnavailable("Vault is not configured")
        except SecretsUnavailable:
            raise
        except (hx.VaultError, requests.exceptions.RequestException, OSError) as e:
            action = {"token": "token lookup", "approle": "AppRole login",
                      "kubernetes": f"Kubernetes login as role {s.k8s_role!r}"}[s.auth]
            raise self._unavailable(action, e) from e
        self._remember(client.token or "")
        self.stats["logins"] += 1
        ttl = "no expiry" if self._token_ttl is None else f"ttl {self._token_ttl:.0f} s"
        log.info("Vault %s succeeded (%s, renewable=%s)", what, ttl, self._renewable)

    def _approle_secret_id(self) -> str | None:
        s = self.settings
        if s.secret_id_file is not None:
            try:
                value = s.secret_id_file.read_text().strip()
            except OSError as e:
                raise SecretsUnavailable(f"cannot read CREDIT_SCORE_VAULT_SECRET_ID_FILE {s.secret_id_file}: "
                                         f"{e.strerror or type(e).__name__}") from e
            self._remember(value)
            return value or None
        return s.secret_id.get_secret_value() if s.secret_id is not None else None

    def _from_auth(self, resp: dict[str, Any]) -> None:
        auth = resp.get("auth") or {}
        lease = float(auth.get("lease_duration") or 0)
        self._set_token_times(lease, lease, bool(auth.get("renewable")))
        self._logged_in = True

    def _set_token_times(self, ttl: float, original: float, renewable: bool) -> None:
        if ttl <= 0:  # root tokens and other non-expiring tokens
            self._token_ttl = self._token_expires = None
        else:
            self._token_ttl = max(original, ttl)
            self._token_expires = self._clock() + ttl
        self._renewable = renewable

    @property
    def _can_login_again(self) -> bool:
        return self.settings.auth in ("approle", "kubernetes")

    def _ensure_token(self) -> None:
        """Log in if needed; renew or replace the token once less than ``renew_fraction`` of its TTL is left."""
        if self._client is None or not self._client.token:
            self._login()
            return
        if self._token_expires is None or self._token_ttl is None:
            return
        left = self._token_expires - self._clock()
        if left > self._token_ttl * self.settings.renew_fraction:
            return
        if self._renewable:
            if self._renew():
                return
        elif not self._can_login_again:
            return  # a static, non-renewable token: use it until Vault refuses it
        if self._can_login_again:
            log.info("Vault token near expiry (%.0f s left) and not renewable further: logging in again", left)
            self.stats["reauths"] += 1
            self._login()

    def _renew(self) -> bool:
        """Renew the token; True when its TTL is comfortable again."""
        import hvac.exceptions as hx
        import requests

        try:
            resp = self._client.auth.token.renew_self(increment=int(self._token_ttl or 0) or None)
        except (requests.exceptions.RequestException, hx.VaultDown) as e:
            raise self._unavailable("token renewal", e) from e
        except hx.VaultError as e:  # revoked, expired, past its max TTL (OpenBao answers 500 for that)
            log.warning("Vault token renewal refused (%s)", type(e).__name__)
            if not self._can_login_again:
                raise self._unavailable("token renewal", e) from e
            return False
        auth = resp.get("auth") or {}
        lease = float(auth.get("lease_duration") or 0)
        self._renewable = bool(auth.get("renewable"))
        self.stats["renewals"] += 1
        if lease > 0:
            self._token_expires = self._clock() + lease
        log.info("Vault token renewed (ttl %.0f s)", lease)
        # capped by the token's max TTL: good enough only while above the renewal threshold
        return lease > (self._token_ttl or 0) * self.settings.renew_fraction

    def _read(self, path: str) -> dict[str, str]:
        """One KV v2 read, with one re-login and retry after 401/403 when the method allows it."""
        import hvac.exceptions as hx
        import requests

        s = self.settings
        for attempt in (1, 2):
            try:
                self._ensure_token()
                resp = self._client.secrets.kv.v2.read_secret_version(path=path, mount_point=s.mount,
                                                                      raise_on_deleted_version=True)
            except hx.InvalidPath:
                self._warn_once(f"missing:{path}", "Vault has no secret at %s/%s", s.mount, path)
                self.stats["reads"] += 1
                return {}
            except (hx.Forbidden, hx.Unauthorized) as e:
                if attempt == 1 and self._can_login_again:
                    log.warning("Vault refused the token (%s) reading %s/%s: logging in again", type(e).__name__,
                                s.mount, path)
                    self.stats["reauths"] += 1
                    self._client.token = ""
                    continue
                hint = ("the token was revoked or expired" if s.auth == "token"
                        else "the policy may not allow this path")
                raise self._unavailable(f"reading {s.mount}/{path} ({hint})", e) from e
            except (hx.VaultError, requests.exceptions.RequestException) as e:
                raise self._unavailable(f"reading {s.mount}/{path}", e) from e
            raw = (resp.get("data") or {}).get("data") or {}
            data = {str(k): (v if isinstance(v, str) else json.dumps(v)) for k, v in raw.items() if v is not None}
            for v in data.values():
                self._remember(v)
            self.stats["reads"] += 1
            return data
        raise AssertionError("unreachable")  # pragma: no cover


def build_provider(settings: VaultSettings | None = None) -> SecretProvider:
    """A provider for ``settings`` (default: :meth:`VaultSettings.from_env`). No network until first use."""
    return SecretProvider(settings if settings is not None else VaultSettings.from_env())


def redact(text: str) -> str:
    """``text`` with every secret value known to any live provider replaced by ``[REDACTED]``."""
    for provider in list(_PROVIDERS):
        text = provider.redact(text)
    return text


class SecretRedactingFilter(logging.Filter):
    """A handler filter that rewrites records so no known secret value reaches the output.

    Attach it to handlers (``handler.addFilter(SecretRedactingFilter(provider))``): the message is formatted
    once, redacted, and stored back without arguments; exception text and string extras are redacted too.
    With ``provider=None`` every live provider's values are redacted.
    """

    _STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def __init__(self, provider: SecretProvider | None = None, name: str = ""):
        super().__init__(name)
        self._redact = provider.redact if provider is not None else redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler's own error path
            return True
        record.msg = self._redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
            if record.exc_info:
                # formatters that re-format exc_info themselves (python-json-logger) get the redacted text only
                record.exc_info = None
        for key, value in list(record.__dict__.items()):
            if key not in self._STANDARD and isinstance(value, str):
                setattr(record, key, self._redact(value))
            elif key == LINES and isinstance(value, list):  # one JSON line per entry (a batch's predictions)
                setattr(record, key, [{k: self._redact(v) if isinstance(v, str) else v for k, v in line.items()}
                                      for line in value])
        return True


# ---- `python -m app.secrets check` ---------------------------------------------------------------------------
def main(argv: Iterable[str] | None = None) -> int:
    """``check``: contact Vault as the service would; print the status (names only, never values).

    Exit 0: usable; 1: unavailable in production (fail closed); 2: invalid settings.
    """
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if args not in ([], ["check"]):
        print("usage: python -m app.secrets [check]", file=sys.stderr)
        return 2
    logging.basicConfig(level=os.environ.get("CREDIT_SCORE_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = VaultSettings.from_env()
    except (ValidationError, ValueError) as e:
        print(f"error: invalid Vault settings: {e}", file=sys.stderr)
        return 2
    provider = build_provider(settings)
    for handler in logging.getLogger().handlers:
        handler.addFilter(SecretRedactingFilter(provider))
    try:
        provider.check()
        present = {n: provider.get(n) is not None for n in SECRET_NAMES}
        status = provider.status()
        status["present"] = present
        print(json.dumps(status, indent=2))
        return 0
    except SecretsUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        provider.close()


if __name__ == "__main__":
    raise SystemExit(main())
