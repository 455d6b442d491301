"""The training data: every configured source read, validated, capped and combined by the policy in
``cfg.data`` (:mod:`app.config.sources`), with the holdout rule and the lineage of each source.

* ``file`` and ``sql`` sources are curated data sets: a validation error stops the training (nothing is
  registered), as it always did for the base data.
* ``production`` rows are left out one by one, each reason counted, never mixed in silently: features no longer
  matching the schema (:mod:`app.sources.production`), the same application and outcome stored twice, values
  the current schema refuses (a category removed, a range narrowed).
* A source with fewer usable rows than its ``min_rows`` is not used (a note); a ``required`` one (file sources
  by default) fails the training then, or when it cannot be read.
* Class counts are checked on the combined rows (a production window may hold one class only).
* ``holdout: newest`` and production rows used: the newest ``holdout_fraction`` of them by scoring time are the
  holdout (the gate judges the challenger and scores the champion on the latest population), provided every
  class has at least two rows there; else a stratified random split over all rows, as before.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.config import DataSource, Settings, TrainingConfig
from app.core.schema import DatasetSchema
from app.core.validate import ValidationFailed, ValidationReport, min_rows_per_class, validate
from app.datasets import DataError
from app.sources.frame import SourceFrame, frame_digest

CLASS_CODES = ("class_missing", "class_too_small")  # judged on the combined rows, not per source
MIN_HOLDOUT_PER_CLASS = 2


@dataclass
class SourceUse:
    """One source's lineage: what was read, what was left out and why, what was used."""

    name: str
    kind: str
    location: str
    used: bool = False
    rows_read: int = 0
    rows: int = 0  # rows the training used (training part and holdout together)
    holdout_rows: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    window: dict[str, str | None] | None = None  # production: the window read and the rows' own span
    digest: str | None = None  # sha256 of the rows used (app.sources.frame.frame_digest)
    file_sha256: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "location": self.location, "used": self.used,
                "rows": self.rows, "rows_read": self.rows_read, "holdout_rows": self.holdout_rows,
                "excluded": self.excluded, "window": self.window, "digest": self.digest,
                "file_sha256": self.file_sha256, "notes": self.notes}


@dataclass
class TrainingData:
    df: pd.DataFrame  # the schema's features (float64) and target (class labels), every used source
    origin: np.ndarray  # each row's source name
    holdout: np.ndarray | None  # rows held out (newest production rows); None: a stratified random split
    holdout_rule: str
    sources: list[SourceUse]
    frames: dict[str, pd.DataFrame]  # source name -> its used rows (for the MLflow datasets)

    @property
    def digest(self) -> str:
        return frame_digest(self.df)

    def record_holdout(self, rows: np.ndarray) -> None:
        """The rows a random split held out (positions in ``df``), for the lineage."""
        self.holdout = np.zeros(len(self.df), dtype=bool)
        self.holdout[rows] = True
        for u in self.sources:
            if u.used:
                u.holdout_rows = int(self.holdout[self.origin == u.name].sum())

    def to_json(self) -> dict[str, Any]:
        return {"rows": len(self.df), "digest": self.digest, "holdout": self.holdout_rule,
                "sources": [s.to_json() for s in self.sources]}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _required(src: DataSource) -> bool:
    return src.required if src.required is not None else src.kind == "file"


def read_source(src: DataSource, settings: Settings, data_path: Path | None, schema: DatasetSchema,
                now: datetime | None = None) -> SourceFrame:
    """One configured source's rows (raises DataError when it cannot be read)."""
    import os

    if src.kind == "file":
        from app.sources.files import read_file_source

        path = src.path or data_path
        if path is None:
            raise DataError(f"source {src.name!r}: no path and no --data / CREDIT_SCORE_DATA")
        return read_file_source(src.name, path, schema)
    url = src.url
    if src.url_env:
        url = os.environ.get(src.url_env, "").strip() or None
        if url is None:
            raise DataError(f"source {src.name!r}: environment variable {src.url_env} is not set")
    if src.kind == "sql":
        from app.sources.sql import read_sql_source

        return read_sql_source(src.name, url or "", schema, query=src.query, table=src.table)
    from app.sources.production import read_production_source

    return read_production_source(src.name, url or settings.prediction_store_url, schema, settings.model_name,
                                  src.window_days, now=now)


def load_training_data(settings: Settings, cfg: TrainingConfig, data_path: Path | None, schema: DatasetSchema,
                       now: datetime | None = None) -> TrainingData:
    """Read, validate and combine the configured sources. Raises DataError (a source cannot be read, a required
    one falls short) or ValidationFailed (a curated source has errors; too few rows of a class overall)."""
    uses: list[SourceUse] = []
    frames: dict[str, pd.DataFrame] = {}
    times: dict[str, np.ndarray] = {}
    for i, src in enumerate(cfg.data.sources):
        try:
            sf = read_source(src, settings, data_path, schema, now)
        except DataError as e:
            if _required(src):
                raise
            use = SourceUse(name=src.name, kind=src.kind, location="", notes=[f"not used: {e}"])
            log(f"source {src.name}: not used: {e}")
            uses.append(use)
            continue
        use = SourceUse(name=src.name, kind=src.kind, location=sf.location, rows_read=len(sf.raw) + sum(
            sf.excluded.values()), excluded=dict(sf.excluded), file_sha256=sf.file_sha256, notes=list(sf.notes))
        if sf.window is not None:
            start, end = sf.window
            use.window = {"start": _iso(start), "end": _iso(end), "first_scored": None, "last_scored": None}
        df, stamps = _clean(sf, src, schema, cfg, use, settings.seed + i)
        uses.append(use)
        if len(df) < src.min_rows:
            msg = f"{len(df)} usable row(s), fewer than min_rows {src.min_rows}: not used"
            if _required(src):
                raise DataError(f"source {src.name!r}: {msg}")
            use.notes.append(msg)
        elif len(df):
            use.used, use.rows = True, len(df)
            frames[src.name] = df
            if stamps is not None:
                times[src.name] = stamps
                use.window.update(first_scored=_iso(stamps.min()), last_scored=_iso(stamps.max()))
        for note in use.notes:
            log(f"source {src.name}: {note}")
    if not frames:
        raise DataError("no training data: " + "; ".join(f"{u.name}: {', '.join(u.notes) or 'no rows'}"
                                                          for u in uses))
    df = pd.concat(list(frames.values()), ignore_index=True)
    origin = np.concatenate([np.full(len(f), name, dtype=object) for name, f in frames.items()])
    _check_classes(df, schema, cfg)
    holdout, rule = _holdout(df, origin, times, frames, schema, cfg)
    for u in uses:
        if u.used:
            u.holdout_rows = int(holdout[origin == u.name].sum()) if holdout is not None else 0
            u.digest = frame_digest(frames[u.name])
    log("training data: " + ", ".join(f"{u.name} ({u.kind}) {u.rows if u.used else 'not used'}" for u in uses)
        + f"; holdout: {rule}")
    return TrainingData(df=df, origin=origin, holdout=holdout, holdout_rule=rule, sources=uses, frames=frames)


def _clean(sf: SourceFrame, src: DataSource, schema: DatasetSchema, cfg: TrainingConfig, use: SourceUse,
           seed: int) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The source's validated rows (typed) and, for production, their scoring times; capped."""
    raw, stamps = sf.raw.reset_index(drop=True), sf.scored_at
    if src.kind == "production":
        raw, stamps = _drop_invalid_production(raw, stamps, schema, cfg, use)
        if len(raw) == 0:
            return _typed_empty(schema), stamps
    elif len(raw) == 0:
        raise DataError(f"source {src.name!r}: no rows in {sf.location}")
    df, report = validate(raw, schema, cfg.cv_folds, cfg.holdout_fraction)
    fatal = [p for p in report.errors if p.code not in CLASS_CODES]
    log(f"source {src.name} ({src.kind}): " + report.render())
    if fatal:
        report.problems = [p for p in report.problems if p.code not in CLASS_CODES]
        raise ValidationFailed(report)
    if stamps is not None:  # rows the schema's duplicate policy dropped (raw's index is 0..n-1)
        stamps = stamps[df.index.to_numpy()]
    df = df.reset_index(drop=True)
    if src.max_rows is not None and len(df) > src.max_rows:
        use.excluded["over_max_rows"] = len(df) - src.max_rows
        if src.kind == "production":  # newest first: keep the newest
            df, stamps = df.iloc[:src.max_rows].reset_index(drop=True), stamps[:src.max_rows]
        else:
            keep = np.sort(np.random.default_rng(seed).choice(len(df), src.max_rows, replace=False))
            df = df.iloc[keep].reset_index(drop=True)
        use.notes.append(f"capped at max_rows {src.max_rows}")
    return df, stamps


def _drop_invalid_production(raw: pd.DataFrame, stamps: np.ndarray, schema: DatasetSchema, cfg: TrainingConfig,
                             use: SourceUse) -> tuple[pd.DataFrame, np.ndarray]:
    cols = [*schema.feature_names, schema.target.name]
    dup = raw.duplicated(subset=cols).to_numpy()  # newest first: the newest copy is kept
    if dup.any():
        use.excluded["duplicate_application"] = int(dup.sum())
        use.notes.append(f"{int(dup.sum())} labelled prediction(s) repeating an application and outcome already "
                         f"taken (a resubmitted request) left out")
        raw, stamps = raw[~dup].reset_index(drop=True), stamps[~dup]
    if len(raw) == 0:
        return raw, stamps
    _, report = validate(raw, schema, cfg.cv_folds, cfg.holdout_fraction)
    bad = np.zeros(len(raw), dtype=bool) if report.bad_rows is None else report.bad_rows.copy()
    for f in schema.features:
        if not f.nullable:
            bad |= raw[f.name].isna().to_numpy()
    if bad.any():
        reasons = sorted({p.one_line() for p in report.errors if p.code not in CLASS_CODES})
        use.excluded["invalid_for_schema"] = int(bad.sum())
        use.notes.append(f"{int(bad.sum())} labelled prediction(s) with values the schema {schema.name} refuses "
                         f"now left out: " + "; ".join(reasons)[:600])
        raw, stamps = raw[~bad].reset_index(drop=True), stamps[~bad]
    return raw, stamps


def _typed_empty(schema: DatasetSchema) -> pd.DataFrame:
    df = pd.DataFrame({f: pd.Series(dtype=np.float64) for f in schema.feature_names})
    df[schema.target.name] = pd.Series(dtype=object)
    return df


def _check_classes(df: pd.DataFrame, schema: DatasetSchema, cfg: TrainingConfig) -> None:
    counts = df[schema.target.name].value_counts()
    need = min_rows_per_class(cfg.cv_folds, cfg.holdout_fraction)
    report = ValidationReport(rows_in=len(df), rows_out=len(df))
    for c in schema.classes:
        n = int(counts.get(c, 0))
        if n < need:
            report.add("error", "class_missing" if n == 0 else "class_too_small", schema.target.name, n,
                       f"target class {c!r} has {n} row(s) over all sources; {cfg.cv_folds}-fold CV with a "
                       f"{cfg.holdout_fraction:.0%} holdout needs at least {need}")
    if not report.ok:
        raise ValidationFailed(report)


def _holdout(df: pd.DataFrame, origin: np.ndarray, times: dict[str, np.ndarray], frames: dict[str, pd.DataFrame],
             schema: DatasetSchema, cfg: TrainingConfig) -> tuple[np.ndarray | None, str]:
    random_rule = f"stratified random {cfg.holdout_fraction:.0%} of all rows"
    if cfg.data.holdout != "newest" or not times:
        return None, random_rule
    # positions of production rows in the combined frame, with their scoring times
    pos, stamps, offset = [], [], 0
    for name, f in frames.items():
        if name in times:
            pos.append(np.arange(offset, offset + len(f)))
            stamps.append(times[name])
        offset += len(f)
    positions, when = np.concatenate(pos), np.concatenate(stamps)
    n = max(1, round(cfg.holdout_fraction * len(positions)))
    newest = positions[np.argsort(when, kind="stable")[::-1][:n]]
    mask = np.zeros(len(df), dtype=bool)
    mask[newest] = True
    target = df[schema.target.name].to_numpy()
    held = pd.Series(target[mask]).value_counts()
    short = [c for c in schema.classes if int(held.get(c, 0)) < MIN_HOLDOUT_PER_CLASS]
    rest = pd.Series(target[~mask]).value_counts()
    short_train = [c for c in schema.classes if int(rest.get(c, 0)) < cfg.cv_folds]
    if short or short_train:
        log(f"holdout: the newest {n} production row(s) lack class(es) {short or short_train}; "
            f"falling back to a {random_rule}")
        return None, random_rule + f" (the newest {n} production rows lack class(es) {short or short_train})"
    first, last = when[np.isin(positions, newest)].min(), when.max()
    return mask, f"newest {n} production rows, scored {_iso(first)} to {_iso(last)}"


def _iso(t: Any) -> str | None:
    if t is None:
        return None
    return pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ")
