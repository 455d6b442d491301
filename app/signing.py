"""Signing registered models with Vault's transit engine, and verifying them with public keys only.

* :class:`TransitSigner` (the step that registers a version: training, the retrain job, Jenkins) asks
  ``<mount>/sign/<key>`` to sign :func:`~app.core.signature.signed_message` of the bundle's digest. The private
  key never leaves Vault; only identities with the ``credit-score-signer`` policy may use it.
* :class:`ModelVerifier` (serving, before anything of a version is downloaded or deserialised) checks the
  version's ``artifact_signature`` with the public keys of :mod:`app.config.signing`: pinned ones from the
  configuration, else those ``<mount>/keys/<key>`` returns to serving's read-only token.

Policy when no signing is configured (no Vault, no pinned keys): in production registration is refused and
every version is refused at load (fail closed); in development registration is unsigned and a load goes
ahead with one loud WARNING, so ``make run`` works without Vault.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import defaultdict
from typing import Any

from app.config import Settings, VaultSettings
from app.core.signature import SignatureError, load_public_key, signed_message, verify_signature

log = logging.getLogger("credit_score.signing")


class SigningError(RuntimeError):
    """A version cannot be signed (Vault unreachable, permission denied, signing required but not configured)."""


class KeysUnavailable(SignatureError):
    """The public keys could not be read (Vault down, never read before): the version is unverified, not proven
    bad. Refused like any signature failure; a reload that retries may load it once Vault answers again."""


def _session(vault: VaultSettings):
    from app.secrets.redaction import Redactor
    from app.secrets.session import VaultSession

    redactor = Redactor()
    for s in (vault.token, vault.role_id, vault.secret_id):
        if s is not None:
            redactor.remember(s.get_secret_value())
    return VaultSession(vault, time.monotonic, redactor.remember, redactor.redact, defaultdict(int)), redactor


class TransitSigner:
    """Signs bundle digests with ``<mount>/sign/<key>`` (an ed25519 key) through its own Vault session."""

    def __init__(self, vault: VaultSettings, mount: str, key: str):
        self.vault, self.mount, self.key = vault, mount, key
        self._session, self._redactor = _session(vault)
        self._lock = threading.Lock()

    def sign(self, model_name: str, artifact_sha256: str) -> str:
        """The transit signature ``vault:v<N>:<base64>`` of the bundle ``artifact_sha256`` of ``model_name``."""
        message = signed_message(model_name, artifact_sha256)
        with self._lock:
            try:
                self._session.ensure_token()
                resp = self._session.client.secrets.transit.sign_data(
                    name=self.key, hash_input=base64.b64encode(message).decode("ascii"), mount_point=self.mount)
            except Exception as e:  # hvac, network, login: the registration must not go ahead unsigned
                raise SigningError(f"cannot sign with {self.mount}/sign/{self.key} at {self.vault.addr}: "
                                   f"{type(e).__name__}: {self._redactor.redact(str(e))[:300]}") from e
        signature = (resp or {}).get("data", {}).get("signature")
        if not isinstance(signature, str):
            raise SigningError(f"{self.mount}/sign/{self.key} returned no signature")
        return signature

    def close(self) -> None:
        self._session.close()


def signer_for(settings: Settings, vault: VaultSettings | None = None) -> TransitSigner | None:
    """The signer when Vault is configured; None in development without Vault. Production without Vault raises."""
    vault = vault if vault is not None else VaultSettings.from_env()
    if vault.auth == "none":
        if settings.env == "production":
            raise SigningError("production registers signed versions only: configure Vault "
                               "(CREDIT_SCORE_VAULT_AUTH, VAULT_ADDR) with the credit-score-signer policy")
        return None
    return TransitSigner(vault, settings.signing_mount, settings.signing_key)


class ModelVerifier:
    """Verifies a version's signature before it is loaded. Thread-safe; one per registry."""

    def __init__(self, settings: Settings, vault: VaultSettings | None = None):
        self.settings = settings
        self.vault = vault if vault is not None else VaultSettings.from_env()
        self._pinned = {v: load_public_key(k) for v, k in settings.signing_public_keys.items()}
        self._session = None
        self._lock = threading.Lock()
        self._last_good: dict[int, Any] | None = None
        self._vault_min = 1

    @property
    def configured(self) -> bool:
        return bool(self._pinned) or self.vault.auth != "none"

    def verify(self, model_name: str, version: str, artifact_sha256: str, signature: str | None) -> int | None:
        """The key version that signed, or None when unverified in development; raises SignatureError."""
        if not self.configured:
            if self.settings.env == "production":
                raise SignatureError("no model signing is configured (CREDIT_SCORE_SIGNING_PUBLIC_KEYS or Vault); "
                                     "production refuses unverified models")
            log.warning("MODEL SIGNATURE NOT VERIFIED: loading %s version %s without checking its signature "
                        "(development without Vault or CREDIT_SCORE_SIGNING_PUBLIC_KEYS). Production refuses this.",
                        model_name, version)
            return None
        keys, vault_min = self.public_keys()
        min_version = max(self.settings.signing_min_version, vault_min)
        return verify_signature(model_name, artifact_sha256, signature, keys, min_version)

    def public_keys(self) -> tuple[dict[int, Any], int]:
        """(key version -> public key, the minimum version Vault still accepts)."""
        if self._pinned:
            return self._pinned, 1
        with self._lock:
            try:
                keys, vault_min = self._read_vault_keys()
            except SignatureError:
                raise
            except Exception as e:  # Vault down: the keys last read stay good (public keys are not secrets)
                if self._last_good is None:
                    raise KeysUnavailable(f"cannot read the signing public keys from Vault: {type(e).__name__}") from e
                log.warning("cannot read the signing public keys from Vault (%s); using the ones read before",
                            type(e).__name__)
                return self._last_good, self._vault_min
            self._last_good, self._vault_min = keys, vault_min
            return keys, vault_min

    def _read_vault_keys(self) -> tuple[dict[int, Any], int]:
        if self._session is None:
            self._session, _ = _session(self.vault)
        self._session.ensure_token()
        s = self.settings
        data = self._session.client.secrets.transit.read_key(name=s.signing_key, mount_point=s.signing_mount)["data"]
        if data.get("type") != "ed25519":
            raise SignatureError(f"{s.signing_mount}/keys/{s.signing_key} is a {data.get('type')!r} key, "
                                 f"not ed25519")
        keys = {int(v): load_public_key(k["public_key"]) for v, k in (data.get("keys") or {}).items()
                if isinstance(k, dict) and k.get("public_key")}
        return keys, int(data.get("min_decryption_version") or 1)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
