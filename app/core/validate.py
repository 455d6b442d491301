"""Validation of rows against the schema: every problem in a data set, counted, with example rows.

Used before training and on batch-scoring input (:mod:`app.serving.batch`).

Errors stop training (non-zero exit, nothing registered). Treatments the schema declares (undocumented codes
remapped, duplicate rows dropped) are applied and counted in the report, never silently.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from app.core.schema import DatasetSchema

Severity = Literal["error", "treated", "warning"]
MAX_EXAMPLES = 5


@dataclass
class Problem:
    severity: Severity
    code: str  # e.g. wrong_type, out_of_range, unknown_category, missing, duplicates, ...
    column: str | None
    count: int
    message: str
    examples: list[dict[str, Any]] = field(default_factory=list)  # {"line": file line, "value": ...}

    def one_line(self) -> str:
        where = f"{self.column}: " if self.column else ""
        ex = ""
        if self.examples:
            shown = ", ".join(f"line {e['line']}={e['value']!r}" if "value" in e else f"line {e['line']}"
                              for e in self.examples)
            ex = f" (e.g. {shown})"
        return f"[{self.severity}] {where}{self.message}{ex}"


@dataclass
class ValidationReport:
    rows_in: int = 0
    rows_out: int = 0
    problems: list[Problem] = field(default_factory=list)
    # the rows of the input refused by a row-level error (wrong type, out of range, unknown code or class), in
    # input order; None before validation ran that far. Callers that may leave rows out (labelled production
    # data) read it; to_dict does not include it
    bad_rows: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def add(self, severity: Severity, code: str, column: str | None, count: int, message: str,
            examples: list[dict[str, Any]] | None = None) -> None:
        self.problems.append(Problem(severity, code, column, int(count), message, examples or []))

    def render(self) -> str:
        head = (f"validation: {self.rows_in} rows read, {self.rows_out} rows kept, "
                f"{len(self.errors)} error(s), {len(self.problems) - len(self.errors)} note(s)")
        return "\n".join([head] + [p.one_line() for p in self.problems])

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows_in": self.rows_in, "rows_out": self.rows_out,
                "problems": [asdict(p) for p in self.problems]}


class ValidationFailed(Exception):
    """Raised when a data set has errors; carries the report."""

    def __init__(self, report: ValidationReport):
        self.report = report
        lines = [p.one_line() for p in report.errors]
        super().__init__("data validation failed:\n" + "\n".join(lines))


def _examples(df: pd.DataFrame, mask: np.ndarray, column: str | None) -> list[dict[str, Any]]:
    idx = np.flatnonzero(mask)[:MAX_EXAMPLES]
    out = []
    for i in idx:
        ex: dict[str, Any] = {"line": int(df.index[i]) + 2}  # +1 header, +1 one-based
        if column is not None:
            v = df[column].iloc[i]
            ex["value"] = None if _isnull(v) else (v.item() if hasattr(v, "item") else v)
        out.append(ex)
    return out


def _isnull(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def rename_source_columns(df: pd.DataFrame, schema: DatasetSchema) -> pd.DataFrame:
    """Accept the file's own column names (each feature's and the target's ``source``: ``Loan Amount (EUR)``,
    the UCI codes X1..X23, Y) as well as the schema's names; the target may be absent (scoring).

    A source column is renamed when the schema name is not a column too. When anything was renamed, an ``ID``
    column (the UCI layout's row number) is dropped."""
    codes = {src: name for src, name in schema.source_columns.items()
             if src in df.columns and name not in df.columns and src != name}
    if codes:
        df = df.rename(columns=codes)
        df = df.drop(columns=[c for c in df.columns if str(c).upper() == "ID"])
    return df


def min_rows_per_class(cv_folds: int, holdout_fraction: float) -> int:
    """Rows a class needs so that the stratified holdout and every CV fold see it."""
    return max(2, math.ceil(cv_folds / (1.0 - holdout_fraction))) + 1


def validate(raw: pd.DataFrame, schema: DatasetSchema, cv_folds: int = 5, holdout_fraction: float = 0.2,
             require_target: bool = True) -> tuple[pd.DataFrame, ValidationReport]:
    """Check ``raw`` against ``schema``; return the clean frame (typed, remapped, de-duplicated) and the report.

    The clean frame has the schema's feature columns as float64 (codes for categoricals) and the target as
    the schema's class labels. Raises nothing: the caller decides what ``report.ok == False`` means.
    With ``require_target=False`` (scoring), the target and class checks and the duplicate policy are skipped.
    """
    report = ValidationReport(rows_in=len(raw))
    if len(raw) == 0:
        report.add("error", "empty", None, 0, "the data set has no rows")
        return raw, report

    needed = schema.feature_names + ([schema.target.name] if require_target else [])
    missing_cols = [c for c in needed if c not in raw.columns]
    for c in missing_cols:
        report.add("error", "missing_column", c, len(raw), "column is missing from the data")
    extra = [c for c in raw.columns if c not in needed and c != schema.target.name]
    if extra:
        report.add("warning", "extra_columns", None, len(extra), f"columns not in the schema are ignored: {extra}")
    if missing_cols:
        return raw, report

    bad_row = np.zeros(len(raw), dtype=bool)
    clean: dict[str, np.ndarray] = {}
    for f in schema.features:
        col = raw[f.name]
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        isnull = col.isna().to_numpy()
        wrong_type = np.isnan(values) & ~isnull
        if f.string_coded:
            values, unknown_text = _string_codes(raw, f, isnull, report)
            wrong_type = np.zeros(len(raw), dtype=bool)
            bad_row |= unknown_text
        if wrong_type.any():
            report.add("error", "wrong_type", f.name, wrong_type.sum(),
                       f"{wrong_type.sum()} value(s) are not {'numbers' if f.type != 'categorical' else 'codes'}",
                       _examples(raw, wrong_type, f.name))
        if f.type == "integer":
            frac = ~np.isnan(values) & (np.floor(values) != values)
            if frac.any():
                report.add("error", "wrong_type", f.name, frac.sum(), f"{frac.sum()} value(s) are not integers",
                           _examples(raw, frac, f.name))
                wrong_type |= frac
        if isnull.any() and not f.nullable:
            report.add("error", "missing", f.name, isnull.sum(), f"{isnull.sum()} missing value(s); not nullable",
                       _examples(raw, isnull, None))
        present = ~np.isnan(values)
        if f.type == "categorical":
            for src, dst in ({} if f.string_coded else f.remap).items():  # string codes: in _string_codes
                hit = present & (values == float(src))
                if hit.any():
                    report.add("treated", "remapped", f.name, hit.sum(),
                               f"{hit.sum()} undocumented code {src!r} mapped to {dst!r}: {f.remap_reason}")
                    values = np.where(hit, float(dst), values)
            unknown = present & ~np.isin(values, f.category_codes)
            if unknown.any():
                codes = sorted({_num(v) for v in values[unknown]})[:10]
                report.add("error", "unknown_category", f.name, unknown.sum(),
                           f"{unknown.sum()} value(s) with unknown codes {codes}; allowed {f.categories}",
                           _examples(raw, unknown, f.name))
                bad_row |= unknown
        else:
            lo = f.min if f.min is not None else -np.inf
            hi = f.max if f.max is not None else np.inf
            out = present & ((values < lo) | (values > hi))
            if out.any():
                report.add("error", "out_of_range", f.name, out.sum(),
                           f"{out.sum()} value(s) outside [{_num(lo)}, {_num(hi)}]", _examples(raw, out, f.name))
                bad_row |= out
        bad_row |= wrong_type
        clean[f.name] = values

    df = pd.DataFrame(clean, index=raw.index)
    report.bad_rows = bad_row
    if not require_target:
        report.rows_out = int((~bad_row).sum())
        return df, report
    target, bad_target = _validate_target(raw, schema, report)
    bad_row |= bad_target
    report.bad_rows = bad_row
    df[schema.target.name] = target

    if not report.ok:
        report.rows_out = int((~bad_row).sum())
        return df, report

    dup = df.duplicated().to_numpy()
    if dup.any():
        n = int(dup.sum())
        if schema.duplicates == "error":
            report.add("error", "duplicates", None, n, f"{n} fully duplicated row(s)", _examples(raw, dup, None))
        elif schema.duplicates == "drop":
            report.add("treated", "duplicates", None, n, f"{n} fully duplicated row(s) dropped",
                       _examples(raw, dup, None))
            df = df[~dup]
        else:
            report.add("warning", "duplicates", None, n, f"{n} fully duplicated row(s) kept")

    _check_class_counts(df[schema.target.name], schema, cv_folds, holdout_fraction, report)
    report.rows_out = len(df)
    return df, report


def _string_codes(raw: pd.DataFrame, f, isnull: np.ndarray,
                  report: ValidationReport) -> tuple[np.ndarray, np.ndarray]:
    """String categories become their model-matrix codes (:attr:`Feature.matrix_codes`; remapped codes are
    counted in the report). A value that is no accepted code is an unknown category, named with the allowed
    values; the row is refused. Returns the codes (NaN where missing or unknown) and the unknown mask."""
    col = raw[f.name]
    text = col.astype("string")
    mapped = text.map({str(c): v for c, v in f.matrix_codes.items()}).to_numpy(dtype=np.float64, na_value=np.nan)
    for src, dst in f.remap.items():
        hit = (text == str(src)).fillna(False).to_numpy(dtype=bool)
        if hit.any():
            report.add("treated", "remapped", f.name, hit.sum(),
                       f"{hit.sum()} undocumented code {src!r} mapped to {dst!r}: {f.remap_reason}")
    unknown = np.isnan(mapped) & ~isnull
    if unknown.any():
        values = sorted({str(v) for v in col[unknown]})[:10]
        report.add("error", "unknown_category", f.name, unknown.sum(),
                   f"{unknown.sum()} value(s) with unknown categories {values}; allowed {f.categories}",
                   _examples(raw, unknown, f.name))
    return mapped, unknown


def _validate_target(raw: pd.DataFrame, schema: DatasetSchema,
                     report: ValidationReport) -> tuple[np.ndarray, np.ndarray]:
    t = schema.target
    col = raw[t.name]
    isnull = col.isna().to_numpy()
    by_text = {str(c): c for c in t.classes}
    as_text = col.map(lambda v: None if _isnull(v) else
                      (str(int(v)) if isinstance(v, float | np.floating) and float(v).is_integer() else str(v)))
    labels = as_text.map(lambda s: by_text.get(s) if s is not None else None)
    unknown = labels.isna().to_numpy() & ~isnull
    if isnull.any():
        report.add("error", "missing", t.name, isnull.sum(), f"{isnull.sum()} row(s) without a target value",
                   _examples(raw, isnull, None))
    if unknown.any():
        vals = sorted({str(v) for v in col[unknown]})[:10]
        report.add("error", "unknown_class", t.name, unknown.sum(),
                   f"{unknown.sum()} target value(s) {vals} are not classes {t.classes}",
                   _examples(raw, unknown, t.name))
    return labels.to_numpy(dtype=object), isnull | unknown


def _check_class_counts(target: pd.Series, schema: DatasetSchema, cv_folds: int, holdout_fraction: float,
                        report: ValidationReport) -> None:
    counts = target.value_counts()
    need = min_rows_per_class(cv_folds, holdout_fraction)
    for c in schema.classes:
        n = int(counts.get(c, 0))
        if n == 0:
            report.add("error", "class_missing", schema.target.name, 0,
                       f"target class {c!r} has no rows; every class in the schema must be present")
        elif n < need:
            report.add("error", "class_too_small", schema.target.name, n,
                       f"target class {c!r} has {n} row(s); {cv_folds}-fold CV with a "
                       f"{holdout_fraction:.0%} holdout needs at least {need}")


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)
