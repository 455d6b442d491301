"""Every setting in one place: its default and its environment variable, in pydantic-settings models grouped
by concern.

* :class:`Settings` (:mod:`app.config.settings`) composes the groups of :mod:`app.config.groups`: paths and
  training data, the MLflow registry, serving, retrain jobs, the prediction store, the monitor.
* :class:`TrainingConfig` and :func:`load_training_config` (:mod:`app.config.training`): the training grid,
  from the environment and an optional YAML file (``--config F``) whose keys mirror :class:`TrainingConfig`.
* :class:`VaultSettings` (:mod:`app.config.vault`): how the service reaches Vault or OpenBao.
* :class:`SigningSettings` (:mod:`app.config.signing`, part of :class:`Settings`): the transit key that signs
  registered models and the public keys serving verifies them with.

Nothing happens at import time: call :func:`get_settings`.
"""

from app.config.base import PROJECT_ROOT, EnvSettings
from app.config.groups import (
    JobSettings,
    MonitorSettings,
    PathSettings,
    RegistrySettings,
    ServingSettings,
    StoreSettings,
)
from app.config.settings import Settings, get_settings
from app.config.signing import DEFAULT_SIGNING_KEY, SigningSettings
from app.config.sources import DataConfig, DataSource
from app.config.training import (
    CLASSIFIERS,
    SAMPLERS,
    GateConfig,
    LatencyBudget,
    RandomForestParams,
    SamplerParams,
    TrainingConfig,
    XGBoostParams,
    load_training_config,
)
from app.config.vault import DEFAULT_K8S_TOKEN_PATH, VaultSettings

__all__ = [
    "DataConfig", "DataSource",
    "CLASSIFIERS", "DEFAULT_K8S_TOKEN_PATH", "DEFAULT_SIGNING_KEY", "PROJECT_ROOT", "SAMPLERS", "EnvSettings",
    "GateConfig", "JobSettings", "LatencyBudget", "MonitorSettings", "PathSettings", "RandomForestParams",
    "RegistrySettings", "SamplerParams", "ServingSettings", "Settings", "SigningSettings", "StoreSettings",
    "TrainingConfig", "VaultSettings", "XGBoostParams", "get_settings", "load_training_config",
]
