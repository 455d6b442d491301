"""The typed prediction record from the API to the store, and its mapping to ``predictions`` rows.

One record per request (a batch request is one record): the request path builds it without any work beyond
collecting references (arrays are not copied or converted), puts it on the writer's queue, and the writer's
thread turns it into rows (:func:`record_rows`). It is a :class:`typing.NamedTuple`, the cheapest record with
field names: measured in-process, building one by keyword costs about 1 us more than the positional 12-field tuple
it replaced (a frozen slotted dataclass: about 5 us more), against ~400 us of CPU per request; the row mapping costs
what it did (~10 us per row).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import orjson

from app.monitoring.store.clock import to_utc


class PredictionRecord(NamedTuple):
    """What the store keeps of one request's predictions (``n`` rows, ``K`` classes, ``d`` features)."""

    prediction_id: str  # the server's id (never the client's); batch rows are stored as "<prediction_id>/<row>"
    unix_time: float  # when the request was answered (time.time())
    model_name: str
    model_version: str
    variant: str  # champion | challenger
    shadow: bool  # scored in shadow mode (not the answer the client got)
    batch: bool  # a batch request: row ids get the "/<row>" suffix, even for one row
    labels: Sequence[Any]  # the n predicted classes
    probabilities: Any  # (n, K) class probabilities in the schema's class order; (K,) for one row
    bad_index: int  # the column of the bad class in ``probabilities``
    features: Any  # (n, d) feature values in ``feature_names`` order ((d,) for one row), or None: not stored
    feature_names: Sequence[str]
    # feature index -> its text categories: the model reads such a feature as the category's index (app/serving/
    # codes.py); the store keeps the string
    text_categories: Mapping[int, Sequence[Any]] | None = None

    @property
    def size(self) -> int:
        """Rows this record becomes (what the writer counts as written or dropped)."""
        return len(self.labels)


def record_rows(record: PredictionRecord) -> list[dict[str, Any]]:
    """The ``predictions`` rows of one record: column name -> value (``id`` left to the database)."""
    labels, batch, rid, names = record.labels, record.batch, record.prediction_id, record.feature_names
    n = len(labels)
    proba = np.asarray(record.probabilities, dtype=float).reshape(n, -1)
    bad = record.bad_index
    when = to_utc(record.unix_time)
    feats = None if record.features is None else np.asarray(record.features, dtype=float).reshape(n, -1)
    name, version, variant, shadow = record.model_name, record.model_version, record.variant, record.shadow
    rows = []
    text = record.text_categories or {}
    for i, label in enumerate(labels):  # orjson: compact JSON, NaN (a missing value) -> null
        features = None
        if feats is not None:
            values = feats[i].tolist()
            for j, categories in text.items():
                v = values[j]
                values[j] = categories[int(v)] if v == v else None
            features = orjson.dumps(dict(zip(names, values, strict=True))).decode()
        rows.append({"request_id": f"{rid}/{i}" if batch else rid, "ts": when, "model_name": name,
                     "model_version": version, "variant": variant, "shadow": shadow,
                     "predicted_class": str(label), "probability": float(proba[i, bad]),
                     "probabilities": orjson.dumps([round(v, 6) for v in proba[i].tolist()]).decode(),
                     "features": features})
    return rows
