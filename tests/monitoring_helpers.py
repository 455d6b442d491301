"""Builders for the monitoring tests: bundles that carry a reference profile, shifted synthetic windows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from app.config import Settings
from app.datasets import generate_synthetic
from app.monitoring.drift import build_profile
from app.training.validate import validate
from tests.helpers import fit_bundle, register_bundle

PAY = ["pay_0", "pay_2", "pay_3", "pay_4", "pay_5", "pay_6"]


def profiled_bundle(schema, frame: pd.DataFrame, **kw):
    """fit_bundle + the reference profile training attaches (features of ``frame``, scores on it)."""
    bundle = fit_bundle(schema, frame, **kw)
    df, _ = validate(frame, schema, cv_folds=2)
    X = df[schema.feature_names].to_numpy(dtype=float)
    bundle.reference_profile = build_profile(schema, X, bundle.predict_proba(X)[:, schema.bad_index], seed=0)
    return bundle


def register_profiled(settings: Settings, schema, frame, workdir: Path, **kw) -> str:
    return register_bundle(settings, profiled_bundle(schema, frame, **kw), workdir)


def shift_payments(frame: pd.DataFrame, months: int = 2) -> pd.DataFrame:
    """Payment delays moved: every repayment status `months` later (capped at the schema's 8)."""
    out = frame.copy()
    for c in PAY:
        out[c] = np.clip(out[c] + months, -2, 8)
    return out


def applicants(frame: pd.DataFrame, schema) -> list[dict]:
    """Request bodies (schema names, plain ints) and the true outcome of each row."""
    df, _ = validate(frame, schema, cv_folds=2)
    rows = df[schema.feature_names].astype(int).to_dict(orient="records")
    return [{k: int(v) for k, v in r.items()} for r in rows], [int(v) for v in df[schema.target.name]]


def window(n: int, seed: int, shifted: bool = False) -> pd.DataFrame:
    f = generate_synthetic(n, seed=seed)
    return shift_payments(f) if shifted else f


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def post_json(client, path: str, body, **kw):
    return client.post(path, data=json.dumps(body), content_type="application/json", **kw)
