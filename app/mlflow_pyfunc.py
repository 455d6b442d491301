"""MLflow models-from-code definition of a registered version (no pickle).

MLflow executes this file when it loads a version as a pyfunc model (e.g. ``mlflow models serve``); the
project's own service loads the bundle directly (:mod:`app.core.bundle`). Nothing else imports this module.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class CreditScorePyfunc(PythonModel):
    def load_context(self, context) -> None:
        from app.core.bundle import load_bundle

        self.bundle = load_bundle(context.artifacts["bundle"], expected_sha256=None)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        b = self.bundle
        X = model_matrix(model_input, b.schema)  # noqa: N806
        proba = b.predict_proba(X)
        from app.core.labels import predict_labels

        pred = predict_labels(proba, b.bad_index, b.threshold)
        out = pd.DataFrame({"prediction": np.asarray(b.classes, dtype=object)[pred]})
        if b.schema.is_binary:
            out["probability"] = proba[:, b.bad_index]
        else:
            for i, c in enumerate(b.classes):
                out[f"probability_{c}"] = proba[:, i]
        return out


def model_matrix(frame: pd.DataFrame, schema) -> np.ndarray:
    """Rows in schema feature order as the model's matrix: string categories become their codes
    (:attr:`~app.core.schema.Feature.matrix_codes`); an unknown one is an error naming the column and value."""
    cols = []
    for f in schema.features:
        col = frame[f.name]
        if f.string_coded:
            lookup = {str(k): v for k, v in f.matrix_codes.items()}
            coded = col.map(lambda v, lookup=lookup: np.nan if pd.isna(v) else lookup.get(str(v), np.inf))
            if np.isinf(coded.to_numpy(dtype=np.float64)).any():
                bad = sorted({str(v) for v in col[np.isinf(coded.to_numpy(dtype=np.float64))]})[:5]
                raise ValueError(f"{f.name}: unknown categories {bad}; allowed {f.categories}")
            col = coded
        cols.append(pd.to_numeric(col, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan))
    return np.column_stack(cols) if cols else np.empty((len(frame), 0))


mlflow.models.set_model(CreditScorePyfunc())
