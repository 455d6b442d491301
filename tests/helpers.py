"""Builders shared by tests: a small fitted bundle, registered in a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.bundle import ModelBundle
from app.config import Settings, TrainingConfig
from app.registry import Registry
from app.training.samplers import make_pipeline
from app.training.validate import validate


def fit_bundle(schema, frame, classifier="xgboost", sampler="none", threshold=0.3, seed=0) -> ModelBundle:
    df, _ = validate(frame, schema, cv_folds=2)
    X = df[schema.feature_names].to_numpy()
    y = np.array([schema.classes.index(v) for v in df[schema.target.name]])
    cfg = TrainingConfig.model_validate({"random_forest": {"n_estimators": 15, "max_depth": 5},
                                         "xgboost": {"n_estimators": 15}})
    pipe = make_pipeline(classifier, sampler, schema.feature_names, cfg, len(schema.classes), seed).fit(X, y)
    return ModelBundle(schema=schema, features=pipe.named_steps["features"], classifier=pipe.named_steps["classifier"],
                       classifier_name=classifier, sampler_name=sampler,
                       threshold=threshold if schema.is_binary else None, metrics={"holdout": {"roc_auc": 0.8}})


def register_bundle(settings: Settings, bundle: ModelBundle, workdir: Path, gate_passed: bool = True,
                    registry: Registry | None = None, **extra_tags) -> str:
    """Register ``bundle``; ``registry``: one with its own signer (a training identity) instead of the default."""
    import mlflow

    reg = registry or Registry(settings)
    sha = bundle.save(workdir / f"bundle-{len(list(workdir.glob('bundle-*')))}")
    mlflow.set_tracking_uri(settings.tracking_uri)
    with mlflow.start_run(experiment_id=reg.experiment_id()) as run:
        pass
    tags = {"artifact_sha256": sha, "classifier": bundle.classifier_name, "sampler": bundle.sampler_name,
            "gate_passed": str(gate_passed).lower(), **extra_tags}
    return reg.register(workdir / f"bundle-{len(list(workdir.glob('bundle-*'))) - 1}", run.info.run_id, tags)
