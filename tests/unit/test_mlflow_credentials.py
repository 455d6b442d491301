"""The MLflow user's credentials reach MLflow's client only as a complete pair, and a Vault outage (nothing
read) leaves working credentials in place. The real chain (OpenBao -> service -> basic-auth server) is
tests/integration/test_mlflow_basic_auth.py."""

from __future__ import annotations

from app.secrets import export_mlflow_credentials


class Values:
    """The provider's read interface over fixed values (None: not available, as after a Vault outage)."""

    def __init__(self, **values):
        self.values = values

    def get(self, name):
        return self.values.get(name)


def test_a_complete_pair_is_written_where_mlflow_reads_it():
    env = {}
    assert export_mlflow_credentials(Values(mlflow_username="scorer", mlflow_password="pw-123456789012"), env)
    assert env == {"MLFLOW_TRACKING_USERNAME": "scorer", "MLFLOW_TRACKING_PASSWORD": "pw-123456789012"}


def test_a_missing_value_changes_nothing():
    env = {"MLFLOW_TRACKING_USERNAME": "scorer", "MLFLOW_TRACKING_PASSWORD": "still-valid-123"}
    assert not export_mlflow_credentials(Values(mlflow_username="other"), env)
    assert not export_mlflow_credentials(Values(), env)
    assert env == {"MLFLOW_TRACKING_USERNAME": "scorer", "MLFLOW_TRACKING_PASSWORD": "still-valid-123"}
