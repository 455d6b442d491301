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
        X = model_input[b.schema.feature_names].to_numpy(dtype=np.float64)  # noqa: N806
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


mlflow.models.set_model(CreditScorePyfunc())
