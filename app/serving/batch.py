"""Batch scoring of a file with a registered model, chunk by chunk (constant memory).

Input: CSV or Parquet in the format training accepted: the schema's column names or their ``source`` names
(the UCI codes X1..X23, a lender's own headers), in any order, with or without the target column, other
columns carried along. Output: the input's columns in their order and as given, plus ``prediction`` (a class
label of the schema) and ``probability`` (of the bad class), or one ``probability_<class>`` column per class
for multiclass models; CSV, or Parquet by extension. A row that fails the schema is not scored: it is returned
as a :class:`Reject` (data row number, reason, its values) and the rest of the file is scored.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.core.bundle import ModelBundle
from app.core.labels import predict_labels
from app.core.schema import DatasetSchema
from app.core.validate import Problem, validate

PARQUET = {".parquet", ".pq"}
SINGLE_ROWS = 16  # below this many rows a failing block is checked row by row


class BatchInputError(ValueError):
    """The input file cannot be scored at all (unreadable, empty, a column missing, rows that fail the schema)."""


@dataclass
class Reject:
    """A row that failed the schema: its 1-based data row number (a CSV's line is ``row + 1``) and why."""

    row: int
    reason: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchResult:
    """What :func:`score_file` did: rows read, scored and rejected; the target column found in the input (not
    used for scoring); with ``evaluate``, the true class index and the probabilities of the scored rows that
    carry a valid target."""

    rows_in: int = 0
    scored: int = 0
    rejects: list[Reject] = field(default_factory=list)
    target_column: str | None = None
    y_true: list[np.ndarray] = field(default_factory=list)
    proba: list[np.ndarray] = field(default_factory=list)
    target_unusable: int = 0  # scored rows whose target is missing or not a class (left out of the metrics)


# ---- columns ---------------------------------------------------------------------------------------------
def column_map(columns: list[Any], schema: DatasetSchema) -> dict[Any, str]:
    """Input column -> schema name, for the features and the target: by the schema's name, else by the
    ``source`` name. Raises BatchInputError naming every feature the input lacks."""
    names = [*schema.feature_names, schema.target.name]
    sources = {f.source: f.name for f in schema.features if f.source}
    if schema.target.source:
        sources[schema.target.source] = schema.target.name
    out: dict[Any, str] = {c: c for c in columns if c in names}
    taken = set(out.values())
    for c in columns:
        name = sources.get(c)
        if c not in out and name is not None and name not in taken:
            out[c] = name
            taken.add(name)
    missing = [f for f in schema.features if f.name not in taken]
    if missing:
        shown = ", ".join(f"{f.name!r}" + (f" (or {f.source!r})" if f.source and f.source != f.name else "")
                          for f in missing)
        raise BatchInputError(f"the input lacks {len(missing)} column(s) of the model's schema "
                              f"{schema.name!r}: {shown}")
    return out


def _string_columns(columns: list[Any], schema: DatasetSchema) -> dict[Any, str]:
    """Columns to read as text: categorical features with string categories and a target with string classes,
    so that a code such as ``007`` or ``1.0`` stays as written."""
    colmap = column_map(columns, schema)
    text = {f.name for f in schema.features
            if f.type == "categorical" and any(isinstance(c, str) for c in f.categories or [])}
    if any(isinstance(c, str) for c in schema.classes):
        text.add(schema.target.name)
    return {c: "string" for c, name in colmap.items() if name in text}


# ---- reading ---------------------------------------------------------------------------------------------
def _chunks(path: Path, chunk_size: int, schema: DatasetSchema) -> Iterator[pd.DataFrame]:
    """The file in chunks; BatchInputError when it is empty, not CSV/Parquet, or lacks a column."""
    try:
        if path.stat().st_size == 0:
            raise BatchInputError(f"input file is empty: {path}")
        if path.suffix.lower() in PARQUET:
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            column_map(pf.schema_arrow.names, schema)
            for batch in pf.iter_batches(batch_size=chunk_size):
                yield batch.to_pandas()
        else:
            header = pd.read_csv(path, nrows=0).columns.tolist()
            dtype = _string_columns(header, schema)
            # nullable dtypes: an integer column with gaps stays integer in the output (21, not 21.0)
            yield from pd.read_csv(path, chunksize=chunk_size, low_memory=False, dtype=dtype,
                                   dtype_backend="numpy_nullable")
    except pd.errors.EmptyDataError:
        raise BatchInputError(f"input file is empty: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise BatchInputError(f"cannot read {path} as CSV: {str(e).splitlines()[0]}") from None
    except BatchInputError:
        raise
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError: not a Parquet file
        kind = "Parquet" if path.suffix.lower() in PARQUET else "CSV"
        raise BatchInputError(f"cannot read {path} as {kind}: {' '.join(str(e).split())[:300]}") from None


# ---- one chunk -------------------------------------------------------------------------------------------
_PHRASES = {"wrong_type": "is not a number", "missing": "is missing and the column is not nullable"}


def _reason(p: Problem, schema: DatasetSchema) -> str:
    """One problem of one row as ``column: value what``."""
    value = p.examples[0].get("value") if p.examples else None
    shown = "" if p.code == "missing" else f" {value!r}"
    if p.code == "wrong_type" and p.column in schema.feature_names:
        f = schema.feature(p.column)
        if f.type == "categorical":
            return f"{p.column}:{shown} is not one of the categories {f.categories}"
        if "integer" in p.message:
            return f"{p.column}:{shown} is not an integer"
    if p.code == "unknown_category":
        return f"{p.column}:{shown} is not one of the categories {schema.feature(p.column).categories}"
    phrase = _PHRASES.get(p.code) or re.sub(r"^\d+ (value\(s\) )?", "is ", p.message)
    return f"{p.column}:{shown} {phrase}" if p.column else p.message


def _bad_rows(frame: pd.DataFrame, schema: DatasetSchema, lo: int, hi: int, out: dict[int, str]) -> None:
    """Find the failing rows of ``frame[lo:hi]`` (known to fail) by halving: a passing half is done in one
    validation, so a chunk with few bad rows costs a few dozen validations, not one per row."""
    if hi - lo <= SINGLE_ROWS:
        for i in range(lo, hi):
            _, report = validate(frame.iloc[i:i + 1], schema, require_target=False)
            if not report.ok:
                out[i] = "; ".join(_reason(p, schema) for p in report.errors)
        return
    mid = (lo + hi) // 2
    for a, b in ((lo, mid), (mid, hi)):
        _, report = validate(frame.iloc[a:b], schema, require_target=False)
        if not report.ok:
            _bad_rows(frame, schema, a, b, out)


def score_chunk(bundle: ModelBundle, frame: pd.DataFrame, first_row: int = 1,
                colmap: dict[Any, str] | None = None) -> tuple[pd.DataFrame, list[Reject], pd.Series | None]:
    """Score the rows of ``frame`` that pass the model's schema.

    Returns the scored rows (the input's columns as given, then the predictions), the rejected rows and, when
    the input has the target column, its values for the scored rows. ``first_row``: the 1-based data row
    number of the frame's first row, for the rejects and the validator's line numbers.
    """
    schema = bundle.schema
    colmap = colmap or column_map(list(frame.columns), schema)
    frame = frame.reset_index(drop=True)
    renamed = frame[list(colmap)].rename(columns=colmap)
    renamed.index = pd.RangeIndex(first_row - 1, first_row - 1 + len(frame))  # validator's line = index + 2
    features = renamed[schema.feature_names]
    clean, report = validate(features, schema, require_target=False)
    bad: dict[int, str] = {}
    if not report.ok:
        _bad_rows(features, schema, 0, len(features), bad)
    keep = np.ones(len(frame), dtype=bool)
    keep[list(bad)] = False
    rejects = [Reject(first_row + i, reason, frame.iloc[i].to_dict()) for i, reason in sorted(bad.items())]
    out = frame[keep].copy()
    target = renamed[schema.target.name][keep] if schema.target.name in renamed.columns else None
    if not keep.any():
        return out, rejects, target
    X = clean[schema.feature_names].to_numpy(dtype=np.float64)[keep]  # noqa: N806
    proba = bundle.predict_proba(X).astype(np.float64)
    pred = predict_labels(proba, bundle.bad_index, bundle.threshold)
    out["prediction"] = np.asarray(bundle.classes, dtype=object)[pred]
    if schema.is_binary:
        out["probability"] = proba[:, bundle.bad_index]
    else:
        for i, c in enumerate(bundle.classes):
            out[f"probability_{c}"] = proba[:, i]
    return out, rejects, target


def score_frame(bundle: ModelBundle, frame: pd.DataFrame, first_line: int = 2) -> pd.DataFrame:
    """Score one frame; raises BatchInputError when any row fails the schema (callers that want the other
    rows scored use :func:`score_chunk`)."""
    scored, rejects, _ = score_chunk(bundle, frame, first_row=first_line - 1)
    if rejects:
        raise BatchInputError("input rows fail the schema:\n" + "\n".join(f"row {r.row}: {r.reason}"
                                                                          for r in rejects[:20]))
    return scored


def target_indices(values: pd.Series, schema: DatasetSchema) -> np.ndarray:
    """The class index of each target value as written (``1``, ``1.0``, ``"charged off"``); -1 when missing or
    not a class."""
    by_text = {str(c): i for i, c in enumerate(schema.classes)}

    def index(v: Any) -> int:
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return -1
        if isinstance(v, float | np.floating) and float(v).is_integer():
            v = int(v)
        return by_text.get(str(v).strip(), -1)

    return np.fromiter((index(v) for v in values), dtype=np.int64, count=len(values))


# ---- the file --------------------------------------------------------------------------------------------
def _write(fh, frame: pd.DataFrame, parquet: bool, state: dict) -> None:
    if parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if state.get("writer") is None:
            state["writer"] = pq.ParquetWriter(fh, table.schema)
        state["writer"].write_table(table.cast(state["writer"].schema))
    else:
        fh.write(frame.to_csv(index=False, header=not state.get("header_done")).encode())
        state["header_done"] = True


def score_file(bundle: ModelBundle, input_path: Path, output_path: Path, chunk_size: int = 100_000,
               progress: bool = True, evaluate: bool = False) -> BatchResult:
    """Score ``input_path`` into ``output_path`` (written atomically, rejected rows left out).

    Raises BatchInputError when the file cannot be scored at all (unreadable, empty, a feature column missing,
    no data rows); rows that fail the schema come back in ``BatchResult.rejects``.
    """
    from tqdm import tqdm

    schema = bundle.schema
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(output_path.name + ".part")
    parquet = output_path.suffix.lower() in PARQUET
    result, state = BatchResult(), {}
    try:
        with open(tmp, "wb") as fh, tqdm(unit="row", unit_scale=True, file=sys.stderr, disable=not progress,
                                          desc="scoring") as bar:
            for chunk in _chunks(input_path, chunk_size, schema):
                colmap = column_map(list(chunk.columns), schema)
                if result.rows_in == 0:
                    result.target_column = next((c for c, n in colmap.items() if n == schema.target.name), None)
                scored, rejects, target = score_chunk(bundle, chunk, result.rows_in + 1, colmap)
                result.rows_in += len(chunk)
                result.scored += len(scored)
                result.rejects.extend(rejects)
                if len(scored):
                    try:
                        _write(fh, scored, parquet, state)
                    except (TypeError, ValueError) as e:  # pyarrow: a column's type changed between chunks
                        raise BatchInputError(f"cannot append rows {result.rows_in - len(chunk) + 1}.. to the "
                                              f"Parquet output ({' '.join(str(e).split())[:200]}): a larger "
                                              f"--chunk-size or a CSV output avoids it") from None
                if evaluate and target is not None and len(scored):
                    y = target_indices(target, schema)
                    ok = y >= 0
                    result.target_unusable += int((~ok).sum())
                    cols = ["probability"] if schema.is_binary else [f"probability_{c}" for c in bundle.classes]
                    p = scored[cols].to_numpy(dtype=np.float64)
                    if schema.is_binary:  # back to (n, 2) in class order
                        p = np.column_stack([1 - p[:, 0], p[:, 0]]) if bundle.bad_index == 1 else \
                            np.column_stack([p[:, 0], 1 - p[:, 0]])
                    result.y_true.append(y[ok])
                    result.proba.append(p[ok])
                bar.update(len(chunk))
            if result.scored == 0 and result.rows_in:  # every row rejected: still a file with the columns
                _write(fh, pd.DataFrame(columns=_output_columns(input_path, schema)), parquet, state)
            if state.get("writer") is not None:
                state["writer"].close()
        if result.rows_in == 0:
            raise BatchInputError(f"input file has no data rows: {input_path}")
        tmp.replace(output_path)
    finally:
        tmp.unlink(missing_ok=True)
    return result


def _output_columns(input_path: Path, schema: DatasetSchema) -> list[str]:
    head = pd.read_parquet(input_path).columns.tolist() if input_path.suffix.lower() in PARQUET else \
        pd.read_csv(input_path, nrows=0).columns.tolist()
    extra = ["prediction", "probability"] if schema.is_binary else \
        ["prediction", *[f"probability_{c}" for c in schema.classes]]
    return [*head, *extra]


def write_rejects(rejects: list[Reject], path: Path) -> None:
    """The rejected rows as CSV: ``row`` (1-based data row; a CSV's line is row + 1), ``reason``, then the
    row's values as given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"row": r.row, "reason": r.reason, **{k: v for k, v in r.values.items() if k not in ("row", "reason")}}
            for r in rejects]
    pd.DataFrame(rows, columns=None if rows else ["row", "reason"]).to_csv(path, index=False)
