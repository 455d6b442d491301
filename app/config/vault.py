"""How the service reaches Vault or OpenBao: address, auth method, where the secrets live, cache lifetimes.

Read from the same environment as every other setting, by the variable names operators already use: Vault's
own ``VAULT_ADDR``, ``VAULT_TOKEN``, ``VAULT_CACERT``, ``VAULT_SKIP_VERIFY``, ``VAULT_NAMESPACE``; ours
``CREDIT_SCORE_VAULT_<FIELD>``; and the service's ``CREDIT_SCORE_ENV``. Empty variables count as unset.
Validation errors never echo an input value (a token or secret ID may be among them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from app.config.base import EnvSettings

DEFAULT_K8S_TOKEN_PATH = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")

_BOOL_VARS = {"skip_verify": "VAULT_SKIP_VERIFY", "env_fallback": "CREDIT_SCORE_VAULT_ENV_FALLBACK"}


def _parse_bool(value: str, var: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{var} must be true or false")


class VaultSettings(EnvSettings):
    """Everything the secret provider (:mod:`app.secrets`) needs; the comment names each field's variable."""

    model_config = SettingsConfigDict(env_prefix="CREDIT_SCORE_VAULT_", env_ignore_empty=True, extra="forbid",
                                      populate_by_name=True, frozen=True, hide_input_in_errors=True)

    addr: str | None = Field(default=None, validation_alias="VAULT_ADDR")
    auth: Literal["none", "token", "approle", "kubernetes"] = "none"  # CREDIT_SCORE_VAULT_AUTH
    token: SecretStr | None = Field(default=None, validation_alias="VAULT_TOKEN")
    role_id: SecretStr | None = None  # CREDIT_SCORE_VAULT_ROLE_ID
    secret_id: SecretStr | None = None  # CREDIT_SCORE_VAULT_SECRET_ID
    secret_id_file: Path | None = None  # CREDIT_SCORE_VAULT_SECRET_ID_FILE (wins over SECRET_ID; re-read per login)
    approle_mount: str = "approle"  # CREDIT_SCORE_VAULT_APPROLE_MOUNT
    k8s_role: str | None = None  # CREDIT_SCORE_VAULT_K8S_ROLE
    k8s_token_path: Path = DEFAULT_K8S_TOKEN_PATH  # CREDIT_SCORE_VAULT_K8S_TOKEN_PATH
    k8s_mount: str = "kubernetes"  # CREDIT_SCORE_VAULT_K8S_MOUNT
    mount: str = "secret"  # CREDIT_SCORE_VAULT_MOUNT (KV v2)
    path: str = "credit-score/app"  # CREDIT_SCORE_VAULT_PATH
    # CREDIT_SCORE_VAULT_SECRETS="name=path#key,...": names that do not live at `path`
    secrets: Annotated[dict[str, str], NoDecode] = {}
    ttl: float = 60.0  # CREDIT_SCORE_VAULT_TTL (s): cache lifetime of values read from Vault
    max_stale: float = 300.0  # CREDIT_SCORE_VAULT_MAX_STALE (s): serve last good values this long past their TTL
    timeout: float = 5.0  # CREDIT_SCORE_VAULT_TIMEOUT (s): per HTTP request to Vault
    renew_fraction: float = 1 / 3  # CREDIT_SCORE_VAULT_RENEW_FRACTION: renew when less of the token's TTL is left
    cacert: Path | None = Field(default=None, validation_alias="VAULT_CACERT")  # CA bundle for a private CA
    skip_verify: bool = Field(default=False, validation_alias="VAULT_SKIP_VERIFY")  # development only
    namespace: str | None = Field(default=None, validation_alias="VAULT_NAMESPACE")  # Enterprise/OpenBao namespaces
    env: Literal["development", "production"] = Field(default="development", validation_alias="CREDIT_SCORE_ENV")
    env_fallback: bool | None = None  # CREDIT_SCORE_VAULT_ENV_FALLBACK; None -> True in development only

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, v: Any, info: ValidationInfo) -> Any:
        """Surrounding blanks go; a blank value counts as unset (the field's default), as an empty one does."""
        if not isinstance(v, str):
            return v
        v = v.strip()
        return v if v else cls.model_fields[info.field_name].get_default(call_default_factory=True)

    @field_validator("auth", "env", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @field_validator("token", "role_id", "secret_id", mode="before")
    @classmethod
    def _strip_secret(cls, v: Any) -> Any:
        return SecretStr(v.get_secret_value().strip()) if isinstance(v, SecretStr) else v

    @field_validator("skip_verify", "env_fallback", mode="before")
    @classmethod
    def _bool(cls, v: Any, info: ValidationInfo) -> Any:
        return _parse_bool(v, _BOOL_VARS[info.field_name]) if isinstance(v, str) else v

    @field_validator("secrets", mode="before")
    @classmethod
    def _secrets_mapping(cls, v: Any) -> Any:
        """``name=path#key,...`` (or a JSON object) from the environment; a dict as given."""
        if not isinstance(v, str):
            return v
        if v.startswith("{"):
            return json.loads(v)
        pairs = [p.strip() for p in v.split(",") if p.strip()]
        bad = [p for p in pairs if "=" not in p]
        if bad:
            raise ValueError(f"CREDIT_SCORE_VAULT_SECRETS: expected name=path#key items, got {bad}")
        return {name.strip(): target.strip() for name, target in (p.split("=", 1) for p in pairs)}

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
