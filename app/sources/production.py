"""Labelled production data: predictions joined with their outcomes from the prediction store.

Read over a scoring-time window, shadow scores excluded (the client got the other model's answer; the outcome
belongs to the prediction it was given), one row per prediction id (the newest), the features as they were
scored (the store keeps them as a JSON object in schema names; a text category as its string). A row is left out,
and counted by reason, when its features were not stored, its stored features no longer match the schema (a
feature added or removed since it was scored: the feature names are reported), or its outcome is no class of
the schema. Nothing is created in the store: a store that does not exist yet holds no rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from app.core.schema import DatasetSchema
from app.datasets import DataError
from app.sources.frame import SourceFrame, describe_db_error, redact
from app.sources.store_tables import feedback, predictions

MAX_NAMES = 10  # feature names listed in a schema-mismatch note


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # the store's times are naive UTC


def read_production_source(name: str, url: str | None, schema: DatasetSchema, model_name: str,
                           window_days: float | None = None, now: datetime | None = None) -> SourceFrame:
    """The labelled, non-shadow predictions of ``model_name`` scored in the last ``window_days`` (all when None),
    newest first. ``url`` None: the store is disabled (no rows). Raises DataError when the store cannot be read."""
    end = now or _utcnow()
    start = end - timedelta(days=window_days) if window_days else None
    target = schema.target.name
    empty = pd.DataFrame(columns=[*schema.feature_names, target])
    if url is None:
        out = SourceFrame(name=name, kind="production", location="(prediction store disabled)", raw=empty,
                          scored_at=np.array([], dtype="datetime64[us]"), window=(start, end))
        out.notes.append("the prediction store is disabled (CREDIT_SCORE_STORE_URL=none): no production rows")
        return out
    frame = SourceFrame(name=name, kind="production", location=redact(url), raw=empty,
                        scored_at=np.array([], dtype="datetime64[us]"), window=(start, end))
    try:
        sa_url = sa.engine.make_url(url)
    except sa.exc.ArgumentError as e:
        raise DataError(f"source {name!r}: invalid prediction store URL: {str(e).splitlines()[0]}") from None
    if sa_url.get_backend_name() == "sqlite" and sa_url.database not in (None, "", ":memory:") \
            and not Path(sa_url.database).exists():
        frame.notes.append(f"the prediction store {redact(url)} does not exist yet: no production rows")
        return frame
    try:
        engine = sa.create_engine(sa_url)
    except (sa.exc.NoSuchModuleError, ImportError) as e:
        raise DataError(f"source {name!r}: cannot use {redact(url)}: {str(e).splitlines()[0]}") from None
    p, f = predictions, feedback
    stmt = (sa.select(p.c.request_id, p.c.ts, p.c.features, f.c.outcome)
            .select_from(p.join(f, f.c.request_id == p.c.request_id))
            .where(p.c.shadow.is_(False), p.c.model_name == model_name, p.c.ts < end)
            .order_by(p.c.ts.desc(), p.c.id.desc()))
    if start is not None:
        stmt = stmt.where(p.c.ts >= start)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("predictions") or not sa.inspect(conn).has_table("feedback"):
                frame.notes.append(f"the prediction store {redact(url)} has no tables yet: no production rows")
                return frame
            rows = conn.execute(stmt).all()
    except sa.exc.SQLAlchemyError as e:
        raise DataError(f"source {name!r}: cannot read the prediction store {redact(url)}: "
                        f"{describe_db_error(e)}") from None
    finally:
        engine.dispose()
    return _to_frame(frame, rows, schema)


def _to_frame(frame: SourceFrame, rows: list, schema: DatasetSchema) -> SourceFrame:
    features, target = schema.feature_names, schema.target.name
    wanted = set(features)
    classes = {str(c) for c in schema.classes}
    seen: set[str] = set()
    records, times = [], []
    added: set[str] = set()
    removed: set[str] = set()
    counts = {"duplicate_prediction_id": 0, "no_features": 0, "schema_mismatch": 0, "unknown_outcome": 0}
    for rid, ts, feats, outcome in rows:  # newest first: the first of an id is kept
        if rid in seen:
            counts["duplicate_prediction_id"] += 1
            continue
        seen.add(rid)
        if feats is None:
            counts["no_features"] += 1
            continue
        try:
            values = json.loads(feats)
        except ValueError:
            values = None
        if not isinstance(values, dict):
            counts["no_features"] += 1
            continue
        keys = set(values)
        if keys != wanted:
            counts["schema_mismatch"] += 1
            added.update(wanted - keys)
            removed.update(keys - wanted)
            continue
        if str(outcome) not in classes:
            counts["unknown_outcome"] += 1
            continue
        records.append([values[k] for k in features] + [str(outcome)])
        times.append(ts)
    frame.exclude("duplicate_prediction_id", counts["duplicate_prediction_id"])
    frame.exclude("no_features", counts["no_features"],
                  f"{counts['no_features']} labelled prediction(s) without stored features left out "
                  f"(CREDIT_SCORE_STORE_FEATURES=false when they were scored)")
    if counts["schema_mismatch"]:
        what = []
        if added:
            what.append(f"features added since: {_names(added)}")
        if removed:
            what.append(f"features removed since: {_names(removed)}")
        frame.exclude("schema_mismatch", counts["schema_mismatch"],
                      f"{counts['schema_mismatch']} labelled prediction(s) scored with features that no longer "
                      f"match schema {schema.name} left out ({'; '.join(what)})")
    frame.exclude("unknown_outcome", counts["unknown_outcome"],
                  f"{counts['unknown_outcome']} labelled prediction(s) whose outcome is no class of "
                  f"{[str(c) for c in schema.classes]} left out")
    frame.raw = pd.DataFrame(records, columns=[*features, target]) if records else frame.raw
    frame.scored_at = np.array(times, dtype="datetime64[us]")
    return frame


def _names(names: set[str]) -> str:
    ordered = sorted(names)
    more = f" and {len(ordered) - MAX_NAMES} more" if len(ordered) > MAX_NAMES else ""
    return ", ".join(ordered[:MAX_NAMES]) + more
