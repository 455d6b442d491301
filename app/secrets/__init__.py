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

The package, by responsibility
    :mod:`app.config.vault`        :class:`VaultSettings` (re-exported here): the settings and their variables.
    :mod:`app.secrets.session`     login (token, AppRole, Kubernetes), token renewal and re-login, KV v2 reads.
    :mod:`app.secrets.provider`    :class:`SecretProvider`: the cache, staleness, the fallback, health, status.
    :mod:`app.secrets.fallback`    the environment variables that may hold each secret.
    :mod:`app.secrets.redaction`   remembering secret values; :func:`redact`; :class:`SecretRedactingFilter`.
    :mod:`app.secrets.errors`      :class:`SecretsUnavailable` and the messages for failed Vault calls.
    :mod:`app.secrets.mlflow_credentials`  the MLflow user's credentials handed to MLflow's client.
    :mod:`app.secrets.cli`         ``python -m app.secrets check``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.config.vault import DEFAULT_K8S_TOKEN_PATH, VaultSettings
from app.secrets.cli import main
from app.secrets.errors import SecretsUnavailable
from app.secrets.fallback import SECRET_NAMES, env_names
from app.secrets.mlflow_credentials import export_mlflow_credentials
from app.secrets.provider import SecretProvider
from app.secrets.redaction import REDACTED, SecretRedactingFilter, redact

__all__ = [
    "DEFAULT_K8S_TOKEN_PATH", "REDACTED", "SECRET_NAMES", "SecretProvider", "SecretRedactingFilter",
    "SecretsUnavailable", "VaultSettings", "build_provider", "env_names", "export_mlflow_credentials", "main",
    "redact",
]


def build_provider(settings: VaultSettings | None = None, *,
                   clock: Callable[[], float] = time.monotonic) -> SecretProvider:
    """A provider for ``settings`` (default: :meth:`VaultSettings.from_env`). No network until first use."""
    return SecretProvider(settings if settings is not None else VaultSettings.from_env(), clock=clock)
