"""The issue's yardstick, measured beside us in ``serve_bench.py``: a bare Flask + XGBoost endpoint.

No validation, no logs, no metrics, no reason codes, no prediction store: the JSON body's values in the
schema's feature order, the shared feature transformer, XGBoost's ``inplace_predict`` with one thread, the
probability back. Served by gunicorn with the same worker count as ours:

    CREDIT_SCORE_MODELS_DIR=... gunicorn -w 2 --chdir bench bare_flask_app:app
"""

from __future__ import annotations

import numpy as np
from flask import Flask, jsonify, request

from app.config import get_settings
from app.registry import Registry

_, bundle = Registry(get_settings()).load("champion")
bundle.set_single_thread()
names = bundle.schema.feature_names
booster = bundle.classifier.get_booster()
booster.set_param({"nthread": 1})
app = Flask(__name__)


@app.post("/predict")
def predict():
    body = request.get_json()
    X = np.array([[body[n] for n in names]], dtype=float)  # noqa: N806
    return jsonify(probability=float(booster.inplace_predict(bundle.features.transform(X))[0]))
