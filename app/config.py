"""Every setting in one place: its default and its environment variable.

Settings are read from the environment (prefix ``CREDIT_SCORE_``; nested keys use ``__``, e.g.
``CREDIT_SCORE_TRAINING__CV_FOLDS=3``) and, for training, from an optional YAML file (``--config F``)
whose keys mirror :class:`TrainingConfig`. Nothing happens at import time: call :func:`get_settings`.

MLflow's own ``MLFLOW_TRACKING_URI`` wins over the embedded default (a SQLite store under ``models/``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]

CLASSIFIERS = ("random_forest", "xgboost")
SAMPLERS = ("none", "random_over", "smote", "adasyn", "borderline_smote")


class RandomForestParams(BaseModel):
    # sqrt features and half-size bootstrap samples: ~4x faster fits than 0.4 / full samples at the same
    # CV ROC-AUC on the UCI data (0.782 vs 0.783, measured on one fold)
    n_estimators: int = 200
    max_depth: int | None = 10
    min_samples_leaf: int = 20
    max_features: float | str = "sqrt"
    max_samples: float | None = 0.5
    class_weight: str | None = None


class XGBoostParams(BaseModel):
    n_estimators: int = 300
    learning_rate: float = 0.05
    max_depth: int = 4
    min_child_weight: float = 5.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    tree_method: str = "hist"


class SamplerParams(BaseModel):
    k_neighbors: int = 5
    sampling_strategy: str | float = "auto"


class GateConfig(BaseModel):
    """Quality gate: absolute floors on holdout metrics and no regression against the champion."""

    floors: dict[str, float] = Field(default_factory=lambda: {"roc_auc": 0.70, "f1_macro": 0.60})
    compare_metric: str | None = None  # default: the selection metric
    epsilon: float = 0.01


class TrainingConfig(BaseModel):
    classifiers: list[str] = Field(default_factory=lambda: list(CLASSIFIERS))
    samplers: list[str] = Field(default_factory=lambda: list(SAMPLERS))
    cv_folds: int = 5
    holdout_fraction: float = 0.2
    selection_metric: str | None = None  # default: roc_auc (binary), f1_macro (multiclass)
    threshold_objective: Literal["f1_bad", "cost"] = "f1_bad"
    # expected-cost objective: cost of approving a bad applicant (false negative) vs rejecting a good one
    cost_false_negative: float = 5.0
    cost_false_positive: float = 1.0
    exclude_protected: bool = False
    random_forest: RandomForestParams = Field(default_factory=RandomForestParams)
    xgboost: XGBoostParams = Field(default_factory=XGBoostParams)
    sampler: SamplerParams = Field(default_factory=SamplerParams)
    gate: GateConfig = Field(default_factory=GateConfig)

    @field_validator("classifiers")
    @classmethod
    def _known_classifiers(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in CLASSIFIERS]
        if bad or not v:
            raise ValueError(f"unknown classifier(s) {bad}; choose from {list(CLASSIFIERS)}")
        return v

    @field_validator("samplers")
    @classmethod
    def _known_samplers(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in SAMPLERS]
        if bad or not v:
            raise ValueError(f"unknown sampler(s) {bad}; choose from {list(SAMPLERS)}")
        return v

    @model_validator(mode="after")
    def _ranges(self) -> TrainingConfig:
        if self.cv_folds < 2:
            raise ValueError("cv_folds must be at least 2")
        if not 0.05 <= self.holdout_fraction <= 0.5:
            raise ValueError("holdout_fraction must be between 0.05 and 0.5")
        return self


class Settings(BaseSettings):
    """Runtime settings. Paths are resolved against the working directory when relative."""

    model_config = SettingsConfigDict(env_prefix="CREDIT_SCORE_", env_nested_delimiter="__", extra="ignore")

    # data
    data: Path | None = None  # training data; None -> the embedded synthetic default
    schema_path: Path = Field(default=PROJECT_ROOT / "data" / "schemas" / "uci_credit.yaml",
                              validation_alias="CREDIT_SCORE_SCHEMA")
    default_data: Path = PROJECT_ROOT / "data" / "synthetic" / "credit_default_synth.csv"
    default_data_rows: int = 30_000
    seed: int = 42

    # registry / tracking: MLflow's own variables, read once here (mlflow.set_tracking_uri rewrites the
    # environment of the running process, so reading os.environ later would follow the last store used)
    mlflow_tracking_uri: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_URI")
    mlflow_registry_uri: str | None = Field(default=None, validation_alias="MLFLOW_REGISTRY_URI")
    models_dir: Path = PROJECT_ROOT / "models"
    model_name: str = "credit-score"
    experiment: str = "credit-score"
    reports_dir: Path = PROJECT_ROOT / "reports"

    # training
    n_jobs: int = -1
    training: TrainingConfig = Field(default_factory=TrainingConfig)

    # serving
    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    timeout: int = 30  # gunicorn worker timeout (s)
    graceful_timeout: int = 30  # SIGTERM: finish in-flight requests within this many seconds
    reload_interval: float = 10.0  # s between checks of the champion/challenger aliases
    explain: Literal["fast", "exact"] = "fast"  # reason codes: approximate (Saabas) or exact TreeSHAP
    reason_codes: int = 4  # how many reason codes per prediction
    extra_fields: Literal["reject", "ignore"] = "reject"  # unknown request fields
    max_batch_rows: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    ab_mode: Literal["off", "split", "shadow"] = "off"
    ab_split: float = 0.0  # share of traffic sent to the challenger in "split" mode
    log_features: bool = False  # personal feature values in prediction logs
    log_level: str = "INFO"
    admin_token: SecretStr | None = None  # dev only; production reads it from Vault (app/secrets.py)
    state_dir: Path | None = None  # retrain job status files and lock; default <models_dir>/jobs
    retrain_config: Path | None = None  # training config YAML for retrain jobs
    retrain_promote: Literal["challenger", "champion", "none"] = "challenger"  # policy after a passed gate
    retrain_timeout: int = 3600  # s
    # where retrain jobs run: "process" (a subprocess of the service, app/jobs.py) or "kubernetes" (a Job from
    # the kube_train_cronjob CronJob's template, with the training image; app/kube_jobs.py)
    job_runner: Literal["process", "kubernetes"] = "process"
    kube_train_cronjob: str = "credit-score-train"
    kube_api_url: str | None = None  # default: the in-cluster API (KUBERNETES_SERVICE_HOST)
    kube_namespace: str | None = None  # default: the pod's namespace (service account)
    kube_token_file: Path | None = None  # default: the pod's service-account token
    prometheus_multiproc_dir: Path = Field(default=Path("/tmp/credit-score-prometheus"),  # noqa: S108
                                           validation_alias="PROMETHEUS_MULTIPROC_DIR")

    # prediction store and feedback (app/monitoring/store.py)
    # SQLAlchemy URL; "" or "none" disables the store. Unset: the secret database_url (Vault, or the environment
    # variable CREDIT_SCORE_DATABASE_URL that the Vault agent renders), else sqlite:///<models_dir>/predictions.db
    store_url: str | None = None
    database_url: SecretStr | None = None
    store_queue_size: int = Field(default=10_000, ge=1)  # pending items per worker before writes are dropped
    store_batch_size: int = Field(default=500, ge=1)  # rows per INSERT (executemany)
    store_flush_interval: float = Field(default=1.0, gt=0)  # s between flushes of a partly filled batch
    store_retry_interval: float = Field(default=5.0, gt=0)  # s the writer waits after a failure before retrying
    store_features: bool = True  # store feature values (drift needs them; removed after retention_days)
    retention_days: float = Field(default=90.0, gt=0)  # predictions, feedback and monitor runs kept this long
    feedback_token: SecretStr | None = None  # dev only; production reads it from Vault (the admin token also works)

    # monitor job (app/monitoring/monitor.py): drift, live performance, retrain policy
    monitor_window_hours: float = Field(default=24.0, gt=0)  # drift: predictions of the last N hours
    monitor_performance_days: float = Field(default=30.0, gt=0)  # live metrics, A/B: predictions with outcomes
    monitor_max_rows: int = Field(default=200_000, ge=100)  # newest rows read per window (bounded memory)
    monitor_min_rows: int = Field(default=200, ge=1)  # fewer predictions in the window: no drift verdict
    monitor_metrics_refresh: float = Field(default=15.0, gt=0)  # s between reads of the latest results (service)
    monitor_textfile: Path | None = None  # also write the gauges for node-exporter's textfile collector
    drift_bins: int = Field(default=10, ge=2)
    drift_psi_threshold: float = Field(default=0.2, gt=0)  # PSI at or above this ...
    drift_p_value: float = Field(default=0.01, gt=0, lt=1)  # ... with a KS / chi-square p-value below this = drift
    retrain_drift_features: int = Field(default=3, ge=1)  # retrain when at least this many features drift
    retrain_auc_floor: float = Field(default=0.65, ge=0, le=1)  # ... or the champion's live ROC-AUC is below this
    retrain_min_labels: int = Field(default=200, ge=1)  # ... measured on at least this many outcomes
    retrain_every_days: float = Field(default=0.0, ge=0)  # ... or the champion is older than this (0 = off)
    retrain_cooldown_hours: float = Field(default=24.0, ge=0)  # no new monitor-started retrain within this
    abtest_min_samples: int = Field(default=200, ge=1)  # outcomes per variant before a verdict
    abtest_min_positives: int = Field(default=20, ge=1)  # ... of which at least this many of each class
    abtest_alpha: float = Field(default=0.05, gt=0, lt=1)  # significance level of the DeLong test

    @field_validator("ab_split")
    @classmethod
    def _share(cls, v: float) -> float:
        if not 0.0 <= v <= 1.0:
            raise ValueError("ab_split must be between 0 and 1")
        return v

    @property
    def tracking_uri(self) -> str:
        """MLflow's own variable wins; otherwise a SQLite store under ``models_dir``."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.models_dir.resolve() / 'mlflow.db'}"

    @property
    def registry_uri(self) -> str:
        return self.mlflow_registry_uri or self.tracking_uri

    @property
    def jobs_dir(self) -> Path:
        return self.state_dir or self.models_dir / "jobs"

    @property
    def prediction_store_url(self) -> str | None:
        """The prediction store's SQLAlchemy URL, or None when the store is disabled."""
        if self.store_url is None:
            if self.database_url is not None and self.database_url.get_secret_value().strip():
                return self.database_url.get_secret_value().strip()
            return f"sqlite:///{self.models_dir.resolve() / 'predictions.db'}"
        url = self.store_url.strip()
        return None if url.lower() in ("", "none", "off", "false") else url

    @property
    def artifact_root(self) -> str:
        return (self.models_dir.resolve() / "artifacts").as_uri()


def load_training_config(path: str | Path | None, base: TrainingConfig | None = None) -> TrainingConfig:
    """Training config = defaults (and environment) overlaid with the YAML file, if given."""
    base = base or TrainingConfig()
    if path is None:
        return base
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of training settings")
    return TrainingConfig.model_validate(_deep_merge(base.model_dump(), raw))


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
