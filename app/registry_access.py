"""Who may do what in the MLflow registry: users and grants on a server running ``--app-name basic-auth``.

The server's config (``default_permission = NO_PERMISSIONS``: docker/compose/mlflow-basic-auth.ini,
kubernetes/components/mlflow/basic_auth.ini) gives a new user nothing. :func:`provision` creates the experiment
and the registered model as the admin, then two users with exactly what they need:

* the **writer** (training: ``credit-score train``, Jenkins, retrain jobs): ``EDIT`` on the experiment and the
  registered model (runs, logged models, new versions, tags, aliases), no ``MANAGE`` (it cannot grant, delete
  the model or change permissions);
* the **reader** (serving, monitoring): ``READ`` on both: it loads versions and their artifacts and can change
  nothing.

Run once by an operator with the admin's credentials (never the service's), values from the environment::

    MLFLOW_TRACKING_URI=... MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD=... \\
    CREDIT_SCORE_MLFLOW_WRITER_USERNAME=... CREDIT_SCORE_MLFLOW_WRITER_PASSWORD=... \\
    CREDIT_SCORE_MLFLOW_READER_USERNAME=... CREDIT_SCORE_MLFLOW_READER_PASSWORD=... python -m app.registry_access

Running it again creates nothing twice and resets the grants. Passwords are sent in request bodies only and
never printed.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import requests

CREATE_USER = "/api/2.0/mlflow/users/create"
GET_USER = "/api/2.0/mlflow/users/get"
GRANT = "/api/3.0/mlflow/users/permissions/grant"
READ, EDIT = "READ", "EDIT"


@dataclass(frozen=True)
class Account:
    username: str
    password: str

    def __repr__(self) -> str:  # never the password
        return f"Account({self.username!r})"


class RegistryAccessError(RuntimeError):
    """The server refused a user or grant call (the message names the call and the status, no secret)."""


def _call(base: str, admin: Account, method: str, path: str, timeout: float, **kw) -> requests.Response:
    r = requests.request(method, base.rstrip("/") + path, auth=(admin.username, admin.password), timeout=timeout,
                         **kw)
    if r.status_code >= 400:
        raise RegistryAccessError(f"{method} {path} answered {r.status_code}")
    return r


def ensure_user(base: str, admin: Account, user: Account, timeout: float = 10.0) -> None:
    """Create ``user`` unless it exists (an existing user's password is left as it is)."""
    try:
        _call(base, admin, "GET", GET_USER, timeout, params={"username": user.username})
        return
    except RegistryAccessError:
        pass
    _call(base, admin, "POST", CREATE_USER, timeout, json={"username": user.username, "password": user.password})


def grant(base: str, admin: Account, username: str, resource_type: str, resource_id: str, permission: str,
          timeout: float = 10.0) -> None:
    _call(base, admin, "POST", GRANT, timeout, json={"username": username, "resource_type": resource_type,
                                                     "resource_id": resource_id, "permission": permission})


def provision(base: str, admin: Account, writer: Account, reader: Account, experiment: str, model: str) -> str:
    """Experiment, registered model, writer (EDIT) and reader (READ); returns the experiment id."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    as_admin = {"MLFLOW_TRACKING_USERNAME": admin.username, "MLFLOW_TRACKING_PASSWORD": admin.password}
    saved = {k: os.environ.get(k) for k in as_admin}
    os.environ.update(as_admin)
    try:
        client = MlflowClient(tracking_uri=base, registry_uri=base)
        exp = client.get_experiment_by_name(experiment)
        experiment_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
        try:
            client.get_registered_model(model)
        except MlflowException:
            client.create_registered_model(model)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    for user, permission in ((writer, EDIT), (reader, READ)):
        ensure_user(base, admin, user)
        grant(base, admin, user.username, "experiment", experiment_id, permission)
        grant(base, admin, user.username, "registered_model", model, permission)
    return experiment_id


def main() -> int:
    from app.config import Settings

    env = os.environ
    try:
        base = env["MLFLOW_TRACKING_URI"]
        admin = Account(env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"])
        writer = Account(env["CREDIT_SCORE_MLFLOW_WRITER_USERNAME"], env["CREDIT_SCORE_MLFLOW_WRITER_PASSWORD"])
        reader = Account(env["CREDIT_SCORE_MLFLOW_READER_USERNAME"], env["CREDIT_SCORE_MLFLOW_READER_PASSWORD"])
    except KeyError as e:
        print(f"error: set {e.args[0]}", file=sys.stderr)
        return 2
    settings = Settings()
    try:
        provision(base, admin, writer, reader, settings.experiment, settings.model_name)
    except (RegistryAccessError, requests.RequestException) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"writer {writer.username}: EDIT, reader {reader.username}: READ on experiment {settings.experiment!r} "
          f"and model {settings.model_name!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
