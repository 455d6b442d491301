"""Stratified K-fold cross-validation over the classifier x sampler grid, in parallel.

Each (combination, fold) is one joblib task, so two cores stay busy for the whole grid rather than per
combination. Out-of-fold probabilities are kept for threshold tuning and the report, and each combination's
model of the first fold for measuring its scoring cost (app/training/cost.py) once the grid is done. A combination that
cannot be fitted (e.g. ADASYN finding no minority neighbours) is recorded with its error, not fatal.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold
from tqdm import tqdm

from app.training.cost import ScoringCost
from app.training.metrics import compute_metrics, scalar_metrics


@dataclass
class ComboResult:
    classifier: str
    sampler: str
    label: str
    fold_metrics: list[dict[str, Any]] = field(default_factory=list)
    fit_seconds: list[float] = field(default_factory=list)
    oof_proba: np.ndarray | None = None
    error: str | None = None
    model: Any = None  # the pipeline fitted on the first fold, until its cost is measured
    cost: ScoringCost | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def mean(self) -> dict[str, float]:
        return _agg(self.fold_metrics, np.mean)

    def std(self) -> dict[str, float]:
        return _agg(self.fold_metrics, np.std)


def _agg(folds: list[dict[str, Any]], fn) -> dict[str, float]:
    if not folds:
        return {}
    scalars = [scalar_metrics(m) for m in folds]
    return {k: float(fn([s[k] for s in scalars])) for k in scalars[0]}


def _fit_fold(pipeline, X, y, train_idx, val_idx, bad_index, keep_model):  # noqa: N803
    t0 = time.perf_counter()
    try:
        model = clone(pipeline).fit(X[train_idx], y[train_idx])
        proba = model.predict_proba(X[val_idx])
    except (ValueError, RuntimeError) as e:  # samplers raise ValueError on degenerate folds
        return None, None, time.perf_counter() - t0, f"{type(e).__name__}: {e}", None
    seconds = time.perf_counter() - t0
    return proba, compute_metrics(y[val_idx], proba, bad_index, 0.5), seconds, None, model if keep_model else None


def run_grid(combos: list[tuple[str, str, str, Any]], X: np.ndarray, y: np.ndarray, n_classes: int,  # noqa: N803
             bad_index: int, folds: int, seed: int, n_jobs: int = -1, progress: bool = True) -> list[ComboResult]:
    """Cross-validate every ``(classifier, sampler, label, pipeline)`` in ``combos``; each result keeps its
    first fold's fitted pipeline in ``model``."""
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(skf.split(np.zeros(len(y)), y))
    results = [ComboResult(c, s, label) for c, s, label, _ in combos]
    for r in results:
        r.oof_proba = np.full((len(y), n_classes), np.nan)
    tasks = [(ci, fi) for ci in range(len(combos)) for fi in range(len(splits))]
    runner = Parallel(n_jobs=n_jobs, return_as="generator_unordered", backend="loky")
    gen = runner(delayed(_with_key)((ci, fi), _fit_fold, combos[ci][3], X, y, *splits[fi], bad_index, fi == 0)
                 for ci, fi in tasks)
    fold_store: dict[int, dict[int, dict[str, Any]]] = {ci: {} for ci in range(len(combos))}
    bar = tqdm(total=len(tasks), desc="cross-validation", unit="fit", file=sys.stderr, disable=not progress)
    for (ci, fi), (proba, metrics, seconds, error, model) in gen:
        r = results[ci]
        r.fit_seconds.append(seconds)
        r.model = model if model is not None else r.model
        if error:
            r.error = r.error or error
        else:
            r.oof_proba[splits[fi][1]] = proba
            fold_store[ci][fi] = metrics
        bar.update(1)
    bar.close()
    for ci, r in enumerate(results):
        r.fold_metrics = [fold_store[ci][fi] for fi in sorted(fold_store[ci])]
        if r.error:
            r.oof_proba = r.model = None
    return results


def _with_key(key, fn, *args):
    return key, fn(*args)
