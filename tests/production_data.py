"""Labelled production data for tests: applications written to a real prediction store through its own write API
(PredictionRecord -> record_rows -> insert_predictions; outcomes through record_feedback), one prediction per
application, scored ``step_s`` seconds apart, oldest first."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from app.monitoring.store import PredictionRecord, PredictionStore, record_rows
from app.schema import DatasetSchema


def fill_store(store: PredictionStore, frame: pd.DataFrame, schema: DatasetSchema, *, prefix: str = "p",
               end_unix: float | None = None, step_s: float = 60.0, model_name: str = "credit-score",
               shadow: bool = False, feature_names: list[str] | None = None, with_outcomes: bool = True) -> list[str]:
    """Store every row of ``frame`` (schema columns; the target is the outcome) as a prediction with its features
    in ``feature_names`` (default: the schema's), then post the outcomes. Returns the prediction ids."""
    names = feature_names or schema.feature_names
    end = end_unix if end_unix is not None else time.time() - 60
    n = len(frame)
    rows, ids = [], []
    X = frame.reindex(columns=names).to_numpy(dtype=float)  # noqa: N806 (a column missing from frame: NaN)
    for i in range(n):
        rid = f"{prefix}{i:06d}"
        rec = PredictionRecord(prediction_id=rid, unix_time=end - (n - 1 - i) * step_s, model_name=model_name,
                               model_version="1", variant="challenger" if shadow else "champion", shadow=shadow,
                               batch=False, labels=["0"], probabilities=np.array([0.7, 0.3]), bad_index=1,
                               features=X[i], feature_names=names)
        rows.extend(record_rows(rec))
        ids.append(rid)
    store.insert_predictions(rows)
    if with_outcomes:
        target = schema.target.name
        res = store.record_feedback([(rid, str(frame[target].iloc[i]), None) for i, rid in enumerate(ids)])
        assert res.recorded == n, res.to_dict()
    return ids
