"""The settings of :class:`app.config.Settings`, one model per concern.

Each class declares its fields (default, environment variable ``CREDIT_SCORE_<FIELD>`` unless an alias names
another) and the values derived from them. :class:`app.config.Settings` composes them, so callers keep flat
access (``settings.port``, ``settings.store_url``) whatever group a field lives in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from app.config.base import PROJECT_ROOT
from app.config.training import TrainingConfig


class PathSettings(BaseModel):
    """Training data, schema, where models and reports are written, and the training run's knobs."""

    data: Path | None = None  # training data; None -> the embedded synthetic default
    schema_path: Path = Field(default=PROJECT_ROOT / "data" / "schemas" / "uci_credit.yaml",
                              validation_alias="CREDIT_SCORE_SCHEMA")
    default_data: Path = PROJECT_ROOT / "data" / "synthetic" / "credit_default_synth.csv"
    default_data_rows: int = 30_000
    seed: int = 42
    models_dir: Path = PROJECT_ROOT / "models"
    reports_dir: Path = PROJECT_ROOT / "reports"
    n_jobs: int = -1
    training: TrainingConfig = Field(default_factory=TrainingConfig)


class RegistrySettings(BaseModel):
    """MLflow tracking and registry."""

    # MLflow's own variables, read once here (mlflow.set_tracking_uri rewrites the environment of the running
    # process, so reading os.environ later would follow the last store used)
    mlflow_tracking_uri: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_URI")
    mlflow_registry_uri: str | None = Field(default=None, validation_alias="MLFLOW_REGISTRY_URI")
    model_name: str = "credit-score"
    experiment: str = "credit-score"

    @property
    def tracking_uri(self) -> str:
        """MLflow's own variable wins; otherwise a SQLite store under ``models_dir``."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.models_dir.resolve() / 'mlflow.db'}"

    @property
    def registry_uri(self) -> str:
        return self.mlflow_registry_uri or self.tracking_uri

    @property
    def artifact_root(self) -> str:
        return (self.models_dir.resolve() / "artifacts").as_uri()


class ServingSettings(BaseModel):
    """The HTTP service: gunicorn, requests, reason codes, A/B routing, logging, metrics."""

    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    timeout: int = 30  # gunicorn worker timeout (s)
    graceful_timeout: int = 30  # SIGTERM: finish in-flight requests within this many seconds
    reload_interval: float = 10.0  # s between checks of the champion/challenger aliases
    # s a booting worker retries its first check while the registry cannot be read (a sibling creating the
    # store's tables, a registry still starting) before it serves without a model
    boot_wait: float = Field(default=15.0, ge=0)
    # a version that failed to load is not tried again for this many seconds, doubled after every further
    # failure up to refused_retry_max: a broken version costs one attempt per back-off, not one per poll
    refused_retry_min: float = Field(default=60.0, gt=0)
    refused_retry_max: float = Field(default=3600.0, gt=0)
    explain: Literal["fast", "exact"] = "fast"  # reason codes: approximate (Saabas) or exact TreeSHAP
    reason_codes: int = 4  # how many reason codes per prediction
    extra_fields: Literal["reject", "ignore"] = "reject"  # unknown request fields
    max_batch_rows: int = 10_000
    # rows per /predict/batch?explain=exact: exact TreeSHAP of a 200-tree forest costs ~10 ms a row
    max_exact_rows: int = Field(default=100, ge=1)
    # rows per /predict/batch?explain=fast: the vectorised walks (XGBoost, forest_paths) explain 10,000 rows in
    # well under a second; a forest whose numpy walk was refused at load explains row by tree in Python (~2 ms a
    # row), so for it the exact cap (max_exact_rows) applies
    max_explain_rows: int = Field(default=10_000, ge=1)
    max_body_bytes: int = 16 * 1024 * 1024
    ab_mode: Literal["off", "split", "shadow"] = "off"
    ab_split: float = 0.0  # share of traffic sent to the challenger in "split" mode
    # a header the gateway sets to a trusted applicant key (overwriting any copy the client sends), for sticky A/B
    # assignment; empty: no client-supplied key is trusted and each request is routed by its server-side id
    ab_key_header: str = ""
    log_features: bool = False  # personal feature values in prediction logs
    log_level: str = "INFO"
    admin_token: SecretStr | None = None  # dev only; production reads it from Vault (app/secrets/)
    prometheus_multiproc_dir: Path = Field(default=Path("/tmp/credit-score-prometheus"),  # noqa: S108
                                           validation_alias="PROMETHEUS_MULTIPROC_DIR")

    @field_validator("ab_split")
    @classmethod
    def _share(cls, v: float) -> float:
        if not 0.0 <= v <= 1.0:
            raise ValueError("ab_split must be between 0 and 1")
        return v


JOB_ENV_ALLOW = (
    # the process itself: where programs and Python packages are, locale, time zone, temporary files, CAs
    "PATH", "HOME", "USER", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    # the job counts its outcome in the service's Prometheus metrics
    "PROMETHEUS_MULTIPROC_DIR",
    # what training reads: data, schema, training knobs, registry location, retrain policy, logging
    "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CREDIT_SCORE_ENV", "CREDIT_SCORE_DATA", "CREDIT_SCORE_SCHEMA",
    "CREDIT_SCORE_DEFAULT_DATA", "CREDIT_SCORE_DEFAULT_DATA_ROWS", "CREDIT_SCORE_SEED", "CREDIT_SCORE_N_JOBS",
    "CREDIT_SCORE_TRAINING__*", "CREDIT_SCORE_MODEL_NAME", "CREDIT_SCORE_EXPERIMENT", "CREDIT_SCORE_MODELS_DIR",
    "CREDIT_SCORE_REPORTS_DIR", "CREDIT_SCORE_STATE_DIR", "CREDIT_SCORE_RETRAIN_CONFIG",
    "CREDIT_SCORE_RETRAIN_PROMOTE", "CREDIT_SCORE_RETRAIN_TIMEOUT", "CREDIT_SCORE_LOG_LEVEL",
)


class JobSettings(BaseModel):
    """Retrain jobs: where they run, their policy and their state."""

    state_dir: Path | None = None  # retrain job status files and lock; default <models_dir>/jobs
    retrain_config: Path | None = None  # training config YAML for retrain jobs
    retrain_promote: Literal["challenger", "champion", "none"] = "challenger"  # policy after a passed gate
    retrain_timeout: int = 3600  # s
    # where retrain jobs run: "process" (a subprocess of the service) or "kubernetes" (a Job from the
    # kube_train_cronjob CronJob's template, with the training image)
    job_runner: Literal["process", "kubernetes"] = "process"
    kube_train_cronjob: str = "credit-score-train"
    kube_api_url: str | None = None  # default: the in-cluster API (KUBERNETES_SERVICE_HOST)
    kube_namespace: str | None = None  # default: the pod's namespace (service account)
    kube_token_file: Path | None = None  # default: the pod's service-account token
    # the service's environment variables a retrain job of the process runner inherits: names, or prefixes ending
    # in "*" (CREDIT_SCORE_JOB_ENV_ALLOW, a JSON list). Nothing else is passed: not VAULT_TOKEN, the admin and
    # feedback tokens, Vault login material, MLflow credentials, unless listed here; the one exception is the
    # prediction store's resolved URL, as CREDIT_SCORE_STORE_URL (the job trains on its labelled rows; the
    # database URL's own variable stays behind). (A Kubernetes Job gets its template's environment, never the
    # service's.)
    job_env_allow: list[str] = Field(default_factory=lambda: list(JOB_ENV_ALLOW))

    @property
    def jobs_dir(self) -> Path:
        return self.state_dir or self.models_dir / "jobs"


class StoreSettings(BaseModel):
    """The prediction store and feedback (app/monitoring/store/)."""

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

    @property
    def prediction_store_url(self) -> str | None:
        """The prediction store's SQLAlchemy URL, or None when the store is disabled."""
        if self.store_url is None:
            if self.database_url is not None and self.database_url.get_secret_value().strip():
                return self.database_url.get_secret_value().strip()
            return f"sqlite:///{self.models_dir.resolve() / 'predictions.db'}"
        url = self.store_url.strip()
        return None if url.lower() in ("", "none", "off", "false") else url


class MonitorSettings(BaseModel):
    """The monitor job (app/monitoring/monitor/): drift, live performance, retrain policy, A/B verdicts."""

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
