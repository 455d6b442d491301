"""One authenticated conversation with Vault: log in, keep the token alive, read KV v2 secrets.

:class:`VaultSession` knows the auth methods (``token``, ``approle``, ``kubernetes``), when to renew the token
(less than ``renew_fraction`` of its TTL left, by the injected clock), when to log in again (renewal refused or
capped by the max TTL, or a 401/403 on a read: AppRole and Kubernetes only) and how to turn failures into
:class:`SecretsUnavailable`. It caches nothing but the token: the values' cache lives in the provider.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from app.config.vault import VaultSettings
from app.secrets.errors import SecretsUnavailable, unavailable

log = logging.getLogger("credit_score.secrets")


class VaultSession:
    """Not thread-safe by itself: the provider serialises calls under its lock."""

    def __init__(self, settings: VaultSettings, clock: Callable[[], float], remember: Callable[[str], None],
                 redact: Callable[[str], str], stats: dict[str, int]):
        self.settings = settings
        self._clock = clock
        self._remember = remember
        self._redact = redact
        self.stats = stats
        self.client = None  # hvac.Client, created on first use
        self._token_ttl: float | None = None  # the token's TTL when issued (s); None: never expires
        self._token_expires: float | None = None  # clock() at expiry
        self._renewable = False
        self._logged_in = False  # the token came from our own login (AppRole/Kubernetes): we may revoke it
        self._warned: set[str] = set()

    @property
    def can_login_again(self) -> bool:
        return self.settings.auth in ("approle", "kubernetes")

    # ---- reads -----------------------------------------------------------------------------------------------
    def read(self, path: str) -> dict[str, str]:
        """One KV v2 read, with one re-login and retry after 401/403 when the method allows it."""
        import hvac.exceptions as hx
        import requests

        s = self.settings
        for attempt in (1, 2):
            try:
                self.ensure_token()
                resp = self.client.secrets.kv.v2.read_secret_version(path=path, mount_point=s.mount,
                                                                     raise_on_deleted_version=True)
            except hx.InvalidPath:
                if f"missing:{path}" not in self._warned:
                    self._warned.add(f"missing:{path}")
                    log.warning("Vault has no secret at %s/%s", s.mount, path)
                self.stats["reads"] += 1
                return {}
            except (hx.Forbidden, hx.Unauthorized) as e:
                if attempt == 1 and self.can_login_again:
                    log.warning("Vault refused the token (%s) reading %s/%s: logging in again", type(e).__name__,
                                s.mount, path)
                    self.stats["reauths"] += 1
                    self.client.token = ""
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

    # ---- the token -------------------------------------------------------------------------------------------
    def ensure_token(self) -> None:
        """Log in if needed; renew or replace the token once less than ``renew_fraction`` of its TTL is left."""
        if self.client is None or not self.client.token:
            self.login()
            return
        if self._token_expires is None or self._token_ttl is None:
            return
        left = self._token_expires - self._clock()
        if left > self._token_ttl * self.settings.renew_fraction:
            return
        if self._renewable:
            if self._renew():
                return
        elif not self.can_login_again:
            return  # a static, non-renewable token: use it until Vault refuses it
        if self.can_login_again:
            log.info("Vault token near expiry (%.0f s left) and not renewable further: logging in again", left)
            self.stats["reauths"] += 1
            self.login()

    def login(self) -> None:
        """Authenticate with the configured method; on success the client holds a fresh token."""
        import hvac.exceptions as hx
        import requests

        s = self.settings
        if self.client is None:
            self.client = self._new_client()
        method = {"token": self._login_token, "approle": self._login_approle,
                  "kubernetes": self._login_kubernetes}.get(s.auth)
        if method is None:  # pragma: no cover (guarded by the provider's vault_enabled)
            raise SecretsUnavailable("Vault is not configured")
        try:
            what = method()
        except SecretsUnavailable:
            raise
        except (hx.VaultError, requests.exceptions.RequestException, OSError) as e:
            action = {"token": "token lookup", "approle": "AppRole login",
                      "kubernetes": f"Kubernetes login as role {s.k8s_role!r}"}[s.auth]
            raise self._unavailable(action, e) from e
        self._remember(self.client.token or "")
        self.stats["logins"] += 1
        ttl = "no expiry" if self._token_ttl is None else f"ttl {self._token_ttl:.0f} s"
        log.info("Vault %s succeeded (%s, renewable=%s)", what, ttl, self._renewable)

    def _login_token(self) -> str:
        s = self.settings
        if s.token is None:
            raise SecretsUnavailable("CREDIT_SCORE_VAULT_AUTH=token needs VAULT_TOKEN")
        self.client.token = s.token.get_secret_value()
        info = self.client.auth.token.lookup_self()["data"]
        ttl = float(info.get("ttl") or 0)
        creation = float(info.get("creation_ttl") or ttl)
        self._set_token_times(ttl, creation, bool(info.get("renewable")))
        self._logged_in = False
        return "token"

    def _login_approle(self) -> str:
        s = self.settings
        if s.role_id is None:
            raise SecretsUnavailable("CREDIT_SCORE_VAULT_AUTH=approle needs CREDIT_SCORE_VAULT_ROLE_ID")
        resp = self.client.auth.approle.login(role_id=s.role_id.get_secret_value(),
                                              secret_id=self._approle_secret_id(), mount_point=s.approle_mount)
        self._from_auth(resp)
        return f"AppRole login ({s.approle_mount})"

    def _login_kubernetes(self) -> str:
        s = self.settings
        if not s.k8s_role:
            raise SecretsUnavailable("CREDIT_SCORE_VAULT_AUTH=kubernetes needs CREDIT_SCORE_VAULT_K8S_ROLE")
        try:
            jwt = s.k8s_token_path.read_text().strip()
        except OSError as e:
            raise SecretsUnavailable(f"cannot read the Kubernetes service-account token {s.k8s_token_path}: "
                                     f"{e.strerror or type(e).__name__}") from e
        if not jwt:
            raise SecretsUnavailable(f"the Kubernetes service-account token {s.k8s_token_path} is empty")
        self._remember(jwt)
        resp = self.client.auth.kubernetes.login(role=s.k8s_role, jwt=jwt, mount_point=s.k8s_mount)
        self._from_auth(resp)
        return f"Kubernetes login as role {s.k8s_role!r} ({s.k8s_mount})"

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

    def _renew(self) -> bool:
        """Renew the token; True when its TTL is comfortable again."""
        import hvac.exceptions as hx
        import requests

        try:
            resp = self.client.auth.token.renew_self(increment=int(self._token_ttl or 0) or None)
        except (requests.exceptions.RequestException, hx.VaultDown) as e:
            raise self._unavailable("token renewal", e) from e
        except hx.VaultError as e:  # revoked, expired, past its max TTL (OpenBao answers 500 for that)
            log.warning("Vault token renewal refused (%s)", type(e).__name__)
            if not self.can_login_again:
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

    # ---- plumbing --------------------------------------------------------------------------------------------
    def _new_client(self):
        import hvac

        s = self.settings
        verify: bool | str = str(s.cacert) if s.cacert else not s.skip_verify
        # token="" keeps hvac from picking VAULT_TOKEN or ~/.vault-token up on its own
        return hvac.Client(url=s.addr, token="", verify=verify, timeout=s.timeout, namespace=s.namespace)

    def _unavailable(self, action: str, e: BaseException) -> SecretsUnavailable:
        return unavailable(action, self.settings.addr, e, self.settings.timeout, self._redact)

    def close(self) -> None:
        """Revoke a token this session obtained by logging in (best effort) and close the HTTP session."""
        client, self.client = self.client, None
        if client is None:
            return
        if self._logged_in:
            try:
                client.auth.token.revoke_self()
            except Exception as e:  # best effort: the token expires by itself
                log.debug("could not revoke the Vault token on close: %s", type(e).__name__)
        with contextlib.suppress(Exception):  # closing a session must not fail the shutdown
            client.adapter.close()
