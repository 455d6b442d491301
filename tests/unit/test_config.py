"""app.config: one settings system (pydantic-settings) for the service and for Vault; names and aliases both
accepted, unknown constructor keys refused, every setting read from its one environment variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import PROJECT_ROOT, Settings, TrainingConfig, VaultSettings, load_training_config
from app.config.groups import JobSettings, MonitorSettings, PathSettings, ServingSettings, StoreSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in list(os.environ):
        if var.startswith(("VAULT_", "CREDIT_SCORE_", "MLFLOW_", "PROMETHEUS_MULTIPROC_DIR")):
            monkeypatch.delenv(var)


# ---- Settings -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["mlflow_tracking_uri", "MLFLOW_TRACKING_URI"])
def test_settings_accept_the_field_name_and_its_alias(key):
    s = Settings(**{key: "http://mlflow:5000"})
    assert s.mlflow_tracking_uri == "http://mlflow:5000" and s.tracking_uri == "http://mlflow:5000"


def test_every_aliased_setting_accepts_both_spellings(tmp_path):
    for name, field in Settings.model_fields.items():
        if field.validation_alias is None:
            continue
        value = str(tmp_path / name)
        assert str(getattr(Settings(**{name: value}), name)) == value, name
        assert str(getattr(Settings(**{field.validation_alias: value}), name)) == value, field.validation_alias


@pytest.mark.parametrize("key", ["mlflow_uri", "tracking_uri", "models_directory"])
def test_settings_refuse_unknown_keys(key):
    with pytest.raises(ValidationError, match="Extra inputs are not permitted") as err:
        Settings(**{key: "x"})
    assert key in str(err.value)


def test_settings_read_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CREDIT_SCORE_PORT", "9001")
    monkeypatch.setenv("CREDIT_SCORE_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("CREDIT_SCORE_SCHEMA", str(tmp_path / "s.yaml"))
    monkeypatch.setenv("CREDIT_SCORE_TRAINING__CV_FOLDS", "3")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prom"))
    s = Settings()
    assert (s.port, s.models_dir, s.schema_path, s.training.cv_folds) == (9001, tmp_path, tmp_path / "s.yaml", 3)
    assert s.tracking_uri == "http://mlflow:5000" and s.prometheus_multiproc_dir == tmp_path / "prom"
    assert Settings(port=9002).port == 9002  # the constructor wins over the environment
    assert Settings.from_env({}).port == 8000  # an explicit mapping instead of os.environ


def test_each_setting_has_exactly_one_environment_variable(monkeypatch):
    # an aliased field is read from its alias only, not also from <prefix><field name>
    monkeypatch.setenv("CREDIT_SCORE_MLFLOW_TRACKING_URI", "http://wrong:5000")
    monkeypatch.setenv("CREDIT_SCORE_SCHEMA_PATH", "/wrong.yaml")
    s = Settings()
    assert s.mlflow_tracking_uri is None
    assert s.schema_path == PROJECT_ROOT / "data" / "schemas" / "uci_credit.yaml"


def test_unrelated_prefixed_variables_do_not_stop_the_application(monkeypatch):
    # not settings: the job id of a retrain, setup.sh seeds, the secrets' environment fallback, a typo
    for var in ("CREDIT_SCORE_JOB_ID", "CREDIT_SCORE_SEED_ADMIN_TOKEN", "CREDIT_SCORE_MLFLOW_PASSWORD",
                "CREDIT_SCORE_VAULT_NO_SUCH_KEY", "CREDIT_SCORE_PORTT"):
        monkeypatch.setenv(var, "1")
    assert Settings().port == 8000
    assert VaultSettings().auth == "none"


def test_unknown_training_keys_are_errors(monkeypatch, tmp_path):
    # the training section is ours alone: a misspelt key is a mistake, said clearly, not a silent default
    config = tmp_path / "train.yaml"
    config.write_text("cv_fold: 3\n")
    with pytest.raises(ValidationError, match="cv_fold"):
        load_training_config(config)
    assert load_training_config(None).cv_folds == 5
    monkeypatch.setenv("CREDIT_SCORE_TRAINING__XGBOOST__N_ESTIMATOR", "10")
    with pytest.raises(ValidationError, match="n_estimator"):
        Settings()


def test_empty_store_url_still_disables_the_store(monkeypatch):
    monkeypatch.setenv("CREDIT_SCORE_STORE_URL", "")
    assert Settings().prediction_store_url is None


def test_settings_are_composed_from_groups_with_flat_access():
    groups = (PathSettings, ServingSettings, JobSettings, StoreSettings, MonitorSettings)
    assert all(issubclass(Settings, g) for g in groups)
    s = Settings(port=1234, store_url="none", retrain_timeout=5, drift_bins=4)
    assert (s.port, s.prediction_store_url, s.retrain_timeout, s.drift_bins) == (1234, None, 5, 4)
    assert s.jobs_dir == s.models_dir / "jobs"
    assert list(Settings.model_fields)[:2] == ["data", "schema_path"]
    assert isinstance(s.training, TrainingConfig)


def test_invalid_values_are_refused():
    with pytest.raises(ValidationError, match="ab_split must be between 0 and 1"):
        Settings(ab_split=2)
    with pytest.raises(ValidationError, match="store_queue_size"):
        Settings(store_queue_size=0)


# ---- VaultSettings ------------------------------------------------------------------------------------------
def test_vault_settings_from_the_process_environment(monkeypatch, tmp_path):
    env = {"VAULT_ADDR": "https://vault:8200", "VAULT_TOKEN": "t0ken-value", "VAULT_CACERT": str(tmp_path / "ca"),
           "VAULT_SKIP_VERIFY": "false", "VAULT_NAMESPACE": "team", "CREDIT_SCORE_ENV": "Production",
           "CREDIT_SCORE_VAULT_AUTH": " kubernetes ", "CREDIT_SCORE_VAULT_K8S_ROLE": "app",
           "CREDIT_SCORE_VAULT_K8S_TOKEN_PATH": str(tmp_path / "jwt"), "CREDIT_SCORE_VAULT_TTL": "7",
           "CREDIT_SCORE_VAULT_MAX_STALE": "30", "CREDIT_SCORE_VAULT_TIMEOUT": "2", "CREDIT_SCORE_VAULT_PATH": "a/b/",
           "CREDIT_SCORE_VAULT_SECRETS": "database_url=db/app#url", "CREDIT_SCORE_VAULT_APPROLE_MOUNT": "",
           "CREDIT_SCORE_VAULT_RENEW_FRACTION": "0.5", "CREDIT_SCORE_VAULT_MOUNT": "  "}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for v in (VaultSettings(), VaultSettings.from_env()):
        assert (v.addr, v.auth, v.env, v.env_fallback, v.k8s_role, v.namespace) == (
            "https://vault:8200", "kubernetes", "production", False, "app", "team")
        assert (v.ttl, v.max_stale, v.timeout, v.renew_fraction) == (7.0, 30.0, 2.0, 0.5)
        assert v.token.get_secret_value() == "t0ken-value" and "t0ken-value" not in repr(v)
        assert (v.cacert, v.k8s_token_path, v.skip_verify) == (tmp_path / "ca", tmp_path / "jwt", False)
        assert v.path == "a/b" and v.secrets == {"database_url": "db/app#url"}
        assert v.approle_mount == "approle" and v.mount == "secret"  # empty or blank counts as unset
    assert VaultSettings(ttl=1).ttl == 1.0  # the constructor wins
    assert VaultSettings.from_env({}).auth == "none"  # an explicit mapping instead of os.environ


@pytest.mark.parametrize("key", ["addr", "VAULT_ADDR"])
def test_vault_settings_accept_the_field_name_and_its_alias(key):
    assert VaultSettings(**{key: "http://127.0.0.1:8200"}).addr == "http://127.0.0.1:8200"


def test_vault_settings_refuse_unknown_keys_and_hide_inputs():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        VaultSettings(address="http://127.0.0.1:8200")
    with pytest.raises(ValidationError) as err:
        VaultSettings(auth="approle", secret_id="do-not-echo-me")  # needs VAULT_ADDR
    assert "needs VAULT_ADDR" in str(err.value) and "do-not-echo-me" not in str(err.value)


def test_vault_settings_read_their_variables_only(monkeypatch):
    monkeypatch.setenv("CREDIT_SCORE_VAULT_ENV", "production")  # not a variable: CREDIT_SCORE_ENV is
    monkeypatch.setenv("CREDIT_SCORE_VAULT_ADDR", "http://wrong:8200")  # not a variable: VAULT_ADDR is
    v = VaultSettings()
    assert v.env == "development" and v.addr is None


def test_vault_and_service_share_the_environment_mode(monkeypatch):
    monkeypatch.setenv("CREDIT_SCORE_ENV", "production")
    assert Settings().env == VaultSettings().env == "production"


def test_project_root_is_the_repository():
    assert (PROJECT_ROOT / "app" / "config" / "__init__.py").is_file() and isinstance(PROJECT_ROOT, Path)
