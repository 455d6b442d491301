"""The MLflow registry user's name and password, from the secret provider to MLflow's client.

The tracking server runs MLflow's basic-auth app (``mlflow server --app-name basic-auth``). MLflow's REST client
reads ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD`` from this process's environment at every
request (registry calls and artifact downloads alike), so writing them there is all a client needs, and a
value rotated in Vault reaches the next request once it is written again. The values are read through the
provider (cached, redacted from every log line) and never logged here.

Which user a process gets is the secret path's business: the service's secret (``credit-score/app``) holds the
read-only user; training and registry commands point ``mlflow_username`` / ``mlflow_password`` at the writer's
path with ``CREDIT_SCORE_VAULT_SECRETS`` (vault/README.md).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Protocol

TRACKING_ENV = (("mlflow_username", "MLFLOW_TRACKING_USERNAME"), ("mlflow_password", "MLFLOW_TRACKING_PASSWORD"))


class _Provider(Protocol):
    def get(self, name: str) -> str | None: ...


def export_mlflow_credentials(provider: _Provider, environ: MutableMapping[str, str] | None = None) -> bool:
    """Write the registry user's credentials where MLflow's client reads them; True when both were there.

    Nothing is written unless both are available (a half-set pair would authenticate nobody): the variables
    keep their previous values, so a Vault outage does not remove credentials that still work.
    """
    environ = os.environ if environ is None else environ
    values = {var: provider.get(name) for name, var in TRACKING_ENV}
    if not all(values.values()):
        return False
    environ.update({var: str(value) for var, value in values.items()})
    return True
