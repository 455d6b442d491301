"""Imbalance strategies and the estimator pipelines built from them.

Every combination is ``imblearn.pipeline.Pipeline(features -> sampler -> classifier)``: imbalanced-learn
pipelines call a sampler's ``fit_resample`` only in ``fit``, so resampling happens inside training folds and
never at predict time or on validation rows.
"""

from __future__ import annotations

from typing import Any

from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE, RandomOverSampler
from imblearn.pipeline import Pipeline
from sklearn.ensemble import RandomForestClassifier
from xgboost import XGBClassifier

from app.config import TrainingConfig
from app.core.features import CreditFeatures

SAMPLER_LABELS = {
    "none": "none",
    "random_over": "RandomOverSampler",
    "smote": "SMOTE",
    "adasyn": "ADASYN",
    "borderline_smote": "BorderlineSMOTE",
}
CLASSIFIER_LABELS = {"random_forest": "RandomForest", "xgboost": "XGBoost"}


def make_sampler(name: str, cfg: TrainingConfig, seed: int) -> Any | None:
    p = cfg.sampler
    if name == "none":
        return None
    if name == "random_over":
        return RandomOverSampler(sampling_strategy=p.sampling_strategy, random_state=seed)
    if name == "smote":
        return SMOTE(sampling_strategy=p.sampling_strategy, k_neighbors=p.k_neighbors, random_state=seed)
    if name == "adasyn":
        return ADASYN(sampling_strategy=p.sampling_strategy, n_neighbors=p.k_neighbors, random_state=seed)
    if name == "borderline_smote":
        return BorderlineSMOTE(sampling_strategy=p.sampling_strategy, k_neighbors=p.k_neighbors,
                               random_state=seed)
    raise ValueError(f"unknown sampler {name!r}")


def make_classifier(name: str, cfg: TrainingConfig, n_classes: int, seed: int, n_jobs: int = 1) -> Any:
    if name == "random_forest":
        return RandomForestClassifier(**cfg.random_forest.model_dump(), random_state=seed, n_jobs=n_jobs)
    if name == "xgboost":
        objective = "binary:logistic" if n_classes == 2 else "multi:softprob"
        return XGBClassifier(**cfg.xgboost.model_dump(), objective=objective, random_state=seed,
                             n_jobs=n_jobs, eval_metric="logloss" if n_classes == 2 else "mlogloss")
    raise ValueError(f"unknown classifier {name!r}")


def make_pipeline(classifier: str, sampler: str, columns: list[str], cfg: TrainingConfig, n_classes: int,
                  seed: int, exclude: list[str] | None = None, n_jobs: int = 1) -> Pipeline:
    steps: list[tuple[str, Any]] = [("features", CreditFeatures(columns=columns, exclude=exclude))]
    smp = make_sampler(sampler, cfg, seed)
    steps.append(("sampler", smp if smp is not None else "passthrough"))
    steps.append(("classifier", make_classifier(classifier, cfg, n_classes, seed, n_jobs)))
    return Pipeline(steps)


def combo_label(classifier: str, sampler: str) -> str:
    return f"{CLASSIFIER_LABELS[classifier]} + {SAMPLER_LABELS[sampler]}"
