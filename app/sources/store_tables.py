"""The prediction store's tables (SQLAlchemy Core): definitions only, no behaviour.

They live below the layers that use them: the monitoring store writes and reads them (it re-exports them as
:mod:`app.monitoring.store.tables`), and training reads labelled production rows from them
(:mod:`app.sources.production`) without importing monitoring code.

``predictions``   one row per prediction: request id (``<id>/<row>`` for batch rows), time (UTC), model name,
                  version, variant (champion|challenger), shadow flag, predicted class, probability of the bad
                  class, all class probabilities (JSON list) and the features (JSON object, schema names; a text
                  category as its string, a missing value as null).
``feedback``      the observed outcome per request id (first one wins; a repeat is a no-op).
``monitor_runs``  the monitor job's gauges (Prometheus text) and summary, newest last.

Times are stored as naive UTC datetimes (written by :mod:`app.monitoring.store.clock`).
"""

from __future__ import annotations

import sqlalchemy as sa

MAX_ID = 160  # prediction ids are 32 hex characters (at most 128 were allowed); batch rows add "/<row>"

metadata = sa.MetaData()
_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

predictions = sa.Table(
    "predictions", metadata,
    sa.Column("id", _pk, primary_key=True, autoincrement=True),
    # the server-generated prediction id (app/api/predict.py: prediction_id), never the client's X-Request-ID; the
    # column keeps its first name so existing stores need no migration
    sa.Column("request_id", sa.String(MAX_ID), nullable=False, index=True),
    sa.Column("ts", sa.DateTime(), nullable=False, index=True),  # UTC
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("variant", sa.String(16), nullable=False),
    sa.Column("shadow", sa.Boolean(), nullable=False, default=False),
    sa.Column("predicted_class", sa.String(64), nullable=False),
    sa.Column("probability", sa.Float(), nullable=False),  # of the bad class
    sa.Column("probabilities", sa.Text(), nullable=False),  # JSON list in the schema's class order
    sa.Column("features", sa.Text(), nullable=True),  # JSON object; NULL when CREDIT_SCORE_STORE_FEATURES=false
)

# the columns a prediction row fills (``id`` is the database's), in table order
PREDICTION_COLUMNS = ("request_id", "ts", "model_name", "model_version", "variant", "shadow", "predicted_class",
                      "probability", "probabilities", "features")

feedback = sa.Table(
    "feedback", metadata,
    sa.Column("request_id", sa.String(MAX_ID), primary_key=True),  # the prediction id the outcome belongs to
    sa.Column("outcome", sa.String(64), nullable=False),  # the observed class, as its string form
    sa.Column("observed_at", sa.DateTime(), nullable=True),
    sa.Column("received_at", sa.DateTime(), nullable=False, index=True),
)

monitor_runs = sa.Table(
    "monitor_runs", metadata,
    sa.Column("id", _pk, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.DateTime(), nullable=False, index=True),
    sa.Column("exposition", sa.Text(), nullable=False),  # Prometheus text format
    sa.Column("summary", sa.Text(), nullable=False),  # JSON
)
