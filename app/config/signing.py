"""Model signing: which Vault transit key signs a registered bundle, and which public keys serving trusts.

Training signs with ``transit/sign/<key>`` through its own Vault identity (``CREDIT_SCORE_VAULT_*``, a token
with the ``credit-score-signer`` policy); serving verifies with public keys only. Where serving's public keys
come from:

* ``CREDIT_SCORE_SIGNING_PUBLIC_KEYS`` (JSON ``{"1": "<base64 raw ed25519 key or PEM>", ...}``): pinned in
  the deployment's configuration, no Vault call at load time; a rotation needs a config change;
* else, when Vault is configured, ``<mount>/keys/<key>`` read with serving's own token: that endpoint returns
  only the public halves of an ed25519 key (serving's policy grants ``read`` there and denies ``sign``), and
  versions below the key's ``min_decryption_version`` are no longer listed, so a revocation in Vault reaches
  every worker without a redeploy;
* else nothing: development loads unsigned models with one loud warning per load, production refuses them.

Either way a signature's key version must be at least ``CREDIT_SCORE_SIGNING_MIN_VERSION``: raising it (or the
key's ``min_decryption_version`` in Vault) revokes every older key version.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

DEFAULT_SIGNING_KEY = "credit-score-models"


class SigningSettings(BaseModel):
    """The fields are read with the service's prefix: ``CREDIT_SCORE_SIGNING_<FIELD>``."""

    signing_mount: str = "transit"  # the transit engine's mount
    signing_key: str = DEFAULT_SIGNING_KEY  # the ed25519 key's name
    signing_public_keys: dict[int, str] = {}  # key version -> public key (base64 raw 32 bytes, or PEM)
    signing_min_version: int = Field(default=1, ge=1)  # the oldest key version whose signatures are accepted

    @field_validator("signing_mount", "signing_key")
    @classmethod
    def _path_part(cls, v: str) -> str:
        v = v.strip().strip("/")
        if not v or not all(c.isalnum() or c in "-_/" for c in v):
            raise ValueError("use letters, digits, -, _ and /")
        return v
