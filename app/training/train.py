"""The training run: validate -> holdout split -> CV grid -> measure each candidate's scoring cost -> select
within the latency budget -> tune threshold -> refit -> holdout -> quality gate -> bundle + report -> MLflow run
and registered version -> alias by policy."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from app.config import PROJECT_ROOT, Settings, TrainingConfig
from app.core.bundle import BundleError, ModelBundle
from app.core.fairness import fairness_ratios
from app.core.labels import predict_labels
from app.core.profile import build_profile
from app.core.schema import DatasetSchema
from app.core.validate import ValidationFailed, validate
from app.datasets import read_table
from app.exit_codes import ExitCode
from app.registry import CHALLENGER, CHAMPION, Registry, RegistryError
from app.training.cost import measure_scoring_cost
from app.training.data import TrainingData, load_training_data
from app.training.gate import GateResult, evaluate_gate
from app.training.grid import ComboResult, run_grid
from app.training.lineage import log_datasets
from app.training.metrics import compute_metrics, scalar_metrics, tune_threshold
from app.training.report import write_report
from app.training.samplers import combo_label, make_pipeline
from app.training.selection import select_candidate

EXIT_DATA, EXIT_GATE = ExitCode.DATA, ExitCode.GATE  # kept here too: callers import them from this module
COST_KEYS = ("single_row_ms", "batch_10k_ms")


@dataclass
class TrainResult:
    version: str | None
    alias: str | None
    selected: dict[str, str]
    cv: dict[str, float]
    holdout: dict[str, float]
    threshold: float | None
    duration_s: float
    gate: GateResult
    report: str
    grid: list[dict[str, Any]] = field(default_factory=list)
    scoring_cost: dict[str, Any] | None = None  # the registered model's own (app/training/cost.py)
    bundle: str | None = None  # the local bundle directory the run wrote (registered or not)
    data: dict[str, Any] | None = None  # the sources used, rows per source, window, digests (app/training/data.py)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "alias": self.alias, "selected": self.selected, "cv": self.cv,
                "holdout": self.holdout, "threshold": self.threshold, "duration_s": round(self.duration_s, 3),
                "gate": {"passed": self.gate.passed, "reasons": self.gate.reasons}, "report": self.report,
                "grid": self.grid, "scoring_cost": self.scoring_cost, "bundle": self.bundle,
                "data": self.data}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_and_validate(data_path: Path, schema: DatasetSchema, cfg: TrainingConfig) -> pd.DataFrame:
    raw = read_table(data_path, schema)
    df, report = validate(raw, schema, cfg.cv_folds, cfg.holdout_fraction)
    log(report.render())
    if not report.ok:
        raise ValidationFailed(report)
    return df


def train(settings: Settings, cfg: TrainingConfig, data_path: Path | None, schema: DatasetSchema,
          promote: str | None = None, progress: bool = True, register: bool = True) -> TrainResult:
    """Run a whole training; raises ValidationFailed on bad data (nothing is registered). ``register=False``
    trains, gates and reports, and leaves the bundle in a local directory (``TrainResult.bundle``) without
    writing to the registry (pull-request builds; the champion is still read for the gate's comparison).
    ``data_path`` is the base data of file sources that name no path (``cfg.data.sources``)."""
    t0 = time.perf_counter()
    data = load_training_data(settings, cfg, data_path, schema)
    df = data.df
    feats = schema.feature_names
    X = df[feats].to_numpy(dtype=np.float64)  # noqa: N806
    y = np.array([schema.classes.index(v) for v in df[schema.target.name]], dtype=np.int64)
    n_classes, bad = len(schema.classes), schema.bad_index
    seed = settings.seed
    if data.holdout is not None:  # the newest production rows: the gate judges on the latest population
        X_tr, X_ho, y_tr, y_ho = X[~data.holdout], X[data.holdout], y[~data.holdout], y[data.holdout]  # noqa: N806
    else:  # split the row numbers: the same split as splitting X and y, and the holdout's rows are known
        idx_tr, idx_ho = train_test_split(np.arange(len(y)), test_size=cfg.holdout_fraction, stratify=y,
                                          random_state=seed)
        X_tr, X_ho, y_tr, y_ho = X[idx_tr], X[idx_ho], y[idx_tr], y[idx_ho]  # noqa: N806
        data.record_holdout(idx_ho)
    exclude = schema.protected_features if cfg.exclude_protected else []
    combos = [(c, s, combo_label(c, s), make_pipeline(c, s, feats, cfg, n_classes, seed, exclude, n_jobs=1))
              for c in cfg.classifiers for s in cfg.samplers]
    log(f"training {len(combos)} combination(s) x {cfg.cv_folds} folds on {len(y_tr)} rows "
        f"(holdout {len(y_ho)} rows)")
    results = run_grid(combos, X_tr, y_tr, n_classes, bad, cfg.cv_folds, seed, settings.n_jobs, progress)
    metric = cfg.selection_metric or ("roc_auc" if n_classes == 2 else "f1_macro")
    _measure_costs(results, X_tr, seed)
    selection = select_candidate(results, metric, cfg.latency_budget)
    best = selection.best
    if selection.over_budget:
        log("over the latency budget: " + "; ".join(f"{k} ({', '.join(v)})" for k, v in selection.over_budget.items())
            + ("" if selection.within_budget else "; no candidate is within it: the gate will fail"))
    threshold = None
    if n_classes == 2:
        threshold, obj = tune_threshold(y_tr, best.oof_proba, bad, cfg.threshold_objective,
                                        cfg.cost_false_negative, cfg.cost_false_positive)
        log(f"selected {best.label}; threshold {threshold:.4f} ({cfg.threshold_objective} {obj:.4f} out of fold)")
    cv_at_threshold = scalar_metrics(compute_metrics(y_tr, best.oof_proba, bad, threshold, schema.classes))
    cv = {**best.mean(), **{k: cv_at_threshold[k] for k in ("f1_macro", "f1_bad", "precision_bad", "recall_bad",
                                                             "accuracy", "balanced_accuracy",
                                                             "precision_macro", "recall_macro")}}
    final = make_pipeline(best.classifier, best.sampler, feats, cfg, n_classes, seed, exclude,
                          n_jobs=settings.n_jobs).fit(X_tr, y_tr)
    proba_ho = final.predict_proba(X_ho)
    cost = measure_scoring_cost(final.named_steps["features"], final.named_steps["classifier"], X_tr, seed)
    holdout_full = compute_metrics(y_ho, proba_ho, bad, threshold, schema.classes)
    holdout = scalar_metrics(holdout_full)

    registry = Registry(settings)
    champ_metrics, champ_note = _score_champion(registry, schema, X_ho, y_ho)
    gate = evaluate_gate(holdout, cfg.gate, metric, champ_metrics, champ_note, best.cost, cfg.latency_budget)
    log("holdout: " + ", ".join(f"{k}={holdout[k]:.4f}" for k in ("roc_auc", "f1_macro", "pr_auc") if k in holdout)
        + f"; gate {'passed' if gate.passed else 'FAILED: ' + '; '.join(gate.reasons)}")

    used = [u for u in data.sources if u.used]
    # one local file: its bytes, as before; otherwise the combined rows (each source's own digest: data.sources)
    data_sha = used[0].file_sha256 if len(used) == 1 and used[0].file_sha256 else data.digest
    # drift reference: training rows' feature distributions and the holdout's score distribution
    profile = build_profile(schema, X_tr, proba_ho[:, bad], bins=settings.drift_bins, seed=seed)
    bundle = ModelBundle(schema=schema, features=final.named_steps["features"],
                         classifier=final.named_steps["classifier"], classifier_name=best.classifier,
                         sampler_name=best.sampler, threshold=threshold,
                         metrics={"cv": cv, "holdout": holdout, "selection_metric": metric,
                                  "scoring_cost": cost.to_dict()},
                         meta={"trained_at": _now(), "data_sha256": data_sha, "data_rows": len(df)},
                         reference_profile=profile)
    run_dir = Path(tempfile.mkdtemp(prefix="credit-score-train-"))
    artifact_sha = bundle.save(run_dir / "bundle")
    duration = time.perf_counter() - t0
    grid_rows = [_grid_row(r, r is best, selection.reasons(r.label)) for r in results]
    report_dir = settings.reports_dir / time.strftime("%Y%m%d-%H%M%S")
    fairness = fairness_table(schema, X_ho, y_ho, proba_ho, threshold)
    report_path = write_report(report_dir, {
        "data_path": ", ".join(f"{u.name}: {u.location}" for u in used), "rows": len(df), "data_sha": data_sha,
        "sources": [u.to_json() for u in data.sources], "holdout_rule": data.holdout_rule,
        "schema_name": schema.name,
        "folds": cfg.cv_folds, "train_rows": len(y_tr), "holdout_rows": len(y_ho), "seed": seed,
        "duration": duration, "selected": best.label, "selection_metric": metric, "threshold": threshold,
        "latency_budget": cfg.latency_budget.model_dump(), "within_budget": selection.within_budget,
        "scoring_cost": cost.to_dict(),
        "threshold_objective": cfg.threshold_objective, "gate": gate, "grid": grid_rows, "cv": cv,
        "holdout": holdout, "classes": [str(c) for c in schema.classes], "bad_index": bad,
        "confusion": holdout_full["confusion_matrix"], "fairness": fairness,
        "fairness_ratios": fairness_ratios(fairness)},
        y_ho, proba_ho, _importances(bundle))

    tags = lineage_tags(schema, data_sha, len(df), bundle, artifact_sha, gate)
    if register:
        version, alias = _record(registry, settings, cfg, bundle, run_dir / "bundle", report_dir, tags, gate,
                                 cv, holdout, results, promote, data)
    else:
        version, alias = None, None
        log(f"not registered (--no-register); bundle in {run_dir / 'bundle'}")
    return TrainResult(version=version, alias=alias, selected={"classifier": best.classifier,
                                                               "sampler": best.sampler, "label": best.label},
                       cv=cv, holdout=holdout, threshold=threshold, duration_s=time.perf_counter() - t0,
                       gate=gate, report=str(report_path), grid=grid_rows, scoring_cost=cost.to_dict(),
                       bundle=str(run_dir / "bundle"), data=data.to_json())


def _score_champion(registry: Registry, schema: DatasetSchema, X_ho, y_ho):  # noqa: N803
    """The champion's metrics on this holdout, when it exists and was trained on the same schema."""
    if registry.alias_version(CHAMPION) is None:
        return None, "no champion yet"
    try:
        info, champ = registry.load(CHAMPION)
    except (BundleError, RegistryError) as e:
        return None, f"champion could not be loaded for comparison: {e}"
    if champ.schema.sha256 != schema.sha256:
        return None, f"champion v{info.version} uses schema {champ.schema.name}; not comparable"
    proba = champ.predict_proba(X_ho)
    return scalar_metrics(compute_metrics(y_ho, proba, champ.bad_index, champ.threshold)), None


def _record(registry, settings, cfg, bundle, bundle_dir, report_dir, tags, gate, cv, holdout, results, promote,
            data: TrainingData):
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    exp_id = registry.experiment_id()
    with mlflow.start_run(experiment_id=exp_id, run_name=f"{bundle.classifier_name}+{bundle.sampler_name}") as run:
        mlflow.log_params({"classifier": bundle.classifier_name, "sampler": bundle.sampler_name,
                           "cv_folds": cfg.cv_folds, "holdout_fraction": cfg.holdout_fraction,
                           "seed": settings.seed, "threshold_objective": cfg.threshold_objective,
                           "selection_metric": bundle.metrics["selection_metric"],
                           "threshold": bundle.threshold, "data_sha256": tags["data_sha256"],
                           "schema": tags["schema_name"],
                           **{f"latency_budget.{k}": v for k, v in cfg.latency_budget.model_dump().items()}})
        mlflow.log_params({f"{bundle.classifier_name}.{k}": v
                           for k, v in getattr(cfg, bundle.classifier_name).model_dump().items()})
        mlflow.log_metrics({f"cv_{k}": v for k, v in cv.items() if np.isfinite(v)})
        mlflow.log_metrics({f"holdout_{k}": v for k, v in holdout.items() if np.isfinite(v)})
        mlflow.log_metrics({f"scoring_{k}": bundle.metrics["scoring_cost"][k] for k in COST_KEYS})
        for r in results:
            if r.ok:
                key = f"grid.{r.classifier}.{r.sampler}"
                mlflow.log_metrics({f"{key}.{k}": v for k, v in r.mean().items() if np.isfinite(v)})
                if r.cost is not None:
                    mlflow.log_metrics({f"{key}.{k}": getattr(r.cost, k) for k in COST_KEYS})
        mlflow.log_dict(gate.to_dict(), "gate.json")
        log_datasets(data, bundle.schema.target.name)
        mlflow.log_dict(data.to_json(), "data_sources.json")
        if bundle.reference_profile is not None:
            mlflow.log_dict(bundle.reference_profile, "reference_profile.json")
        mlflow.log_artifacts(str(report_dir), "report")
        mlflow.set_tags({"gate_passed": str(gate.passed).lower()})
        run_id = run.info.run_id
    version = registry.register(bundle_dir, run_id, tags)
    alias = None
    if gate.passed and promote != "none":
        # "auto"/"challenger": challenger, unless there is no champion yet; "champion": replace it directly
        first = registry.alias_version(CHAMPION) is None
        alias = CHAMPION if promote == CHAMPION or first else CHALLENGER
        registry.promote(version, alias)
    log(f"registered {settings.model_name} version {version}" + (f" as {alias}" if alias else " (not promoted)"))
    return version, alias


def lineage_tags(schema: DatasetSchema, data_sha: str, rows: int, bundle: ModelBundle, artifact_sha: str,
                 gate: GateResult) -> dict[str, str]:
    return {
        "data_sha256": data_sha, "data_rows": str(rows), "schema_name": schema.name,
        "schema_sha256": schema.sha256, "git_commit": git_commit(), "package_versions": json.dumps(_versions()),
        "trained_at": bundle.meta["trained_at"], "classifier": bundle.classifier_name,
        "sampler": bundle.sampler_name, "threshold": "" if bundle.threshold is None else f"{bundle.threshold:.6f}",
        "artifact_sha256": artifact_sha, "gate_passed": str(gate.passed).lower(),
        "gate_reasons": "; ".join(gate.reasons)[:4000],
        **{f"scoring_{k}": f"{bundle.metrics['scoring_cost'][k]:.3f}" for k in COST_KEYS
           if "scoring_cost" in bundle.metrics},
    }


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        import os

        return os.environ.get("GIT_COMMIT", "unknown")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for dist in ("credit-score-mlops", "numpy", "pandas", "scikit-learn", "imbalanced-learn", "xgboost-cpu",
                 "xgboost", "skops", "mlflow"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def _measure_costs(results: list[ComboResult], rows: np.ndarray, seed: int) -> None:
    """Each fitted candidate's scoring cost, from its first-fold model (same parameters as the model that would
    be registered; refitting every candidate on the whole split would cost another fold's worth of fits),
    measured one after the other once the grid is done, so no fit of this run competes for the cores."""
    t0 = time.perf_counter()
    for r in results:
        if r.ok and r.model is not None:
            r.cost = measure_scoring_cost(r.model.named_steps["features"], r.model.named_steps["classifier"],
                                          rows, seed)
        r.model = None
    log(f"measured the scoring cost of {sum(r.cost is not None for r in results)} candidate(s) in "
        f"{time.perf_counter() - t0:.1f} s")


def _grid_row(r: ComboResult, winner: bool, over_budget: list[str]) -> dict[str, Any]:
    return {"label": r.label, "classifier": r.classifier, "sampler": r.sampler, "winner": winner,
            "mean": r.mean(), "std": r.std(), "error": r.error,
            "fit_s": float(np.mean(r.fit_seconds)) if r.fit_seconds else 0.0,
            **{k: None if r.cost is None else getattr(r.cost, k) for k in COST_KEYS},
            "over_budget": over_budget}


def _importances(bundle: ModelBundle) -> list[tuple[str, float]]:
    imp = getattr(bundle.classifier, "feature_importances_", None)
    if imp is None:
        return []
    pairs = list(zip(bundle.features.output_names_, map(float, imp), strict=True))
    return sorted(pairs, key=lambda p: -p[1])


def fairness_table(schema: DatasetSchema, X: np.ndarray, y: np.ndarray, proba: np.ndarray,  # noqa: N803
                   threshold: float | None) -> list[dict[str, Any]]:
    """Per protected group: approval rate (not predicted bad), TPR and FPR for the bad class, and the approval
    rate relative to the best-approved group (app/core/fairness.py; the monitor uses the same table)."""
    from app.core.fairness import fairness_table as table

    pred_bad = predict_labels(proba, schema.bad_index, threshold) == schema.bad_index
    return table(schema, X, y == schema.bad_index, pred_bad)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
