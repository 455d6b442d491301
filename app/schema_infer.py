"""Draft a dataset schema from a data file (``credit-score schema infer``).

Every column becomes a feature with a snake_case name and the original header as its ``source``; its type,
range, categories and nullability are guessed from the values, and each guess carries a YAML comment for the
user to review. Columns that cannot be features (every value unique: an identifier; more distinct strings than
the category limit: free text; no values at all) are left out with a note at the top of the file. The target's
classes come from its values; the bad class is guessed as the minority class.

The draft is meant to validate its own file and train with no edit: ranges are open-ended (``min: 0`` for a
column without negative values, no ``max``) so that new data is not refused for exceeding the training maximum.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

MAX_CATEGORIES = 30
MAX_CLASSES = 20
INTEGER_CODES = 10  # an integer column with at most this many distinct values may be codes: say so
NUMERIC_SHARE = 0.95  # a text column whose values are numbers at least this often is numeric
PROTECTED = re.compile(r"(^|_)(sex|gender|age|marital|marriage|race|ethnic\w*|religion|nationality|citizenship)"
                       r"($|_)")
IDENTIFIER = re.compile(r"(^|_)(id|uuid|key|number|no)$")


class InferError(ValueError):
    """The file cannot give a schema (unreadable, empty, no such target, a target that is not a class label)."""


@dataclass
class Entry:
    """One schema entry (feature or target) and the review comments of its keys."""

    fields: dict[str, Any]
    notes: dict[str, str] = field(default_factory=dict)  # key -> comment


@dataclass
class Draft:
    name: str
    target: Entry
    features: list[Entry]
    left_out: list[str]  # "column: why"
    rows: int


def snake_case(header: Any) -> str:
    """``Loan Amount (EUR)`` -> ``loan_amount_eur``; ``Card Utilisation (%)`` -> ``card_utilisation_pct``;
    accents dropped; a name that would start with a digit gets ``col_`` in front."""
    text = unicodedata.normalize("NFKD", str(header))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).replace("%", " pct ").replace("#", " no ")
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    if not text:
        text = "column"
    return f"col_{text}" if text[0].isdigit() else text


def read_frame(path: str | Path) -> pd.DataFrame:
    """A CSV or Parquet file as pandas infers it; InferError when missing, empty or not that format."""
    path = Path(path)
    if not path.is_file():
        raise InferError(f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise InferError(f"data file is empty: {path}")
    parquet = path.suffix.lower() in {".parquet", ".pq"}
    try:
        df = pd.read_parquet(path) if parquet else pd.read_csv(path, low_memory=False)
    except pd.errors.EmptyDataError:
        raise InferError(f"data file is empty: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as e:
        raise InferError(f"cannot read {path} as {'Parquet' if parquet else 'CSV'}: "
                         f"{' '.join(str(e).split())[:300]}") from None
    if len(df) == 0:
        raise InferError(f"data file has no data rows: {path}")
    return df


def _plain(v: Any) -> Any:
    """numpy scalars as Python ones; whole floats as ints."""
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _as_numbers(col: pd.Series) -> pd.Series | None:
    """The column as float64 when it is numeric (or text that is numbers at least NUMERIC_SHARE of the time)."""
    if pd.api.types.is_bool_dtype(col):
        return None
    if pd.api.types.is_numeric_dtype(col):
        return col.astype("float64")
    present = col.dropna()
    nums = pd.to_numeric(present, errors="coerce")
    if len(present) and nums.notna().mean() >= NUMERIC_SHARE:
        return pd.to_numeric(col, errors="coerce").astype("float64")
    return None


def _feature(header: Any, name: str, col: pd.Series, max_categories: int) -> Entry | str:
    """The entry of one column, or why it is left out."""
    n, isnull = len(col), col.isna()
    present = col[~isnull]
    if present.empty:
        return "no values at all"
    e = Entry({"name": name})
    if name != str(header):
        e.fields["source"] = str(header)
    nums = _as_numbers(col)
    distinct = present.nunique()
    if nums is not None:
        values = nums.dropna()
        whole = bool(np.all(np.floor(values) == values))
        if whole and distinct == len(present) and distinct > max_categories and \
                (IDENTIFIER.search(name) or values.is_monotonic_increasing):
            return f"looks like an identifier (every value unique{', increasing' if whole else ''})"
        bad = int(nums.isna().sum() - isnull.sum())
        integer = pd.api.types.is_integer_dtype(col)  # a float column of whole numbers (money) stays numeric
        e.fields["type"] = "integer" if integer else "numeric"
        e.notes["type"] = f"review: {len(values)} numbers" + (", all whole" if whole and not integer else "") + \
            (f"; {bad} value(s) are not numbers (e.g. {col[nums.isna() & ~isnull].iloc[0]!r}): they fail "
             f"validation" if bad else "")
        lo, hi = _plain(values.min()), _plain(values.max())
        if lo >= 0:
            e.fields["min"] = 0
        e.notes["min" if lo >= 0 else "type"] = (e.notes["type"] + "; " if lo < 0 else "") + \
            f"review: observed range [{lo}, {hi}]; no max, so that larger values are accepted"
        if whole and distinct <= INTEGER_CODES:
            codes = sorted(_plain(v) for v in values.unique())
            e.notes["type"] += f"; {distinct} distinct values {codes}: if they are codes, not quantities, make " \
                               f"it categorical with categories: {codes}"
        example = _plain(values.median() if not whole else int(values.median()))
    else:
        text = present.astype(str)
        if distinct == len(present) and distinct > max_categories:
            return "looks like an identifier (every value is a different string)"
        if distinct > max_categories:
            return (f"{distinct} distinct strings, more than the category limit of {max_categories}: free text "
                    f"or an identifier (--max-categories keeps it as a category)")
        counts = text.value_counts()
        e.fields["type"] = "categorical"
        e.fields["categories"] = [str(c) for c in counts.index]
        e.notes["categories"] = f"review: the {distinct} values seen, most frequent first; any other value is " \
                                f"refused"
        example = str(counts.index[0])
    e.fields["nullable"] = bool(isnull.any())
    if isnull.any():
        e.notes["nullable"] = f"{int(isnull.sum())} of {n} values missing"
    if PROTECTED.search(name):
        e.fields["protected"] = True
        e.notes["protected"] = "review: guessed from the name; protected attributes get the fairness report"
    e.fields["example"] = example
    return e


def _target(header: Any, name: str, col: pd.Series) -> Entry:
    present = col.dropna()
    if present.empty:
        raise InferError(f"target column {header!r} has no values")
    nums = _as_numbers(col)
    if nums is not None and not np.all(np.floor(nums.dropna()) == nums.dropna()):
        raise InferError(f"target column {header!r} has fractional numbers: a class label must be an integer "
                         f"or a string (regression targets are not supported)")
    labels = nums.dropna().astype(np.int64) if nums is not None else present.astype(str)
    counts = labels.value_counts()
    if len(counts) < 2:
        raise InferError(f"target column {header!r} has one value ({_plain(counts.index[0])!r}): a classifier "
                         f"needs at least two classes")
    if len(counts) > MAX_CLASSES:
        raise InferError(f"target column {header!r} has {len(counts)} distinct values, more than {MAX_CLASSES}: "
                         f"not a class label")
    classes = sorted(_plain(c) for c in counts.index)
    bad = _plain(counts.idxmin())
    e = Entry({"name": name})
    if name != str(header):
        e.fields["source"] = str(header)
    e.fields["classes"] = classes
    e.fields["bad_class"] = bad
    shares = ", ".join(f"{_plain(c)!r} {counts[c] / len(labels):.0%}" for c in counts.index)
    e.notes["classes"] = f"the values seen: {shares}"
    e.notes["bad_class"] = "review: guessed as the minority class (the outcome the model should catch)"
    if col.isna().any():
        e.notes["name"] = f"{int(col.isna().sum())} row(s) have no target: validation refuses them; drop them first"
    return e


def infer_schema(df: pd.DataFrame, target: str, name: str = "my_data",
                 max_categories: int = MAX_CATEGORIES) -> Draft:
    """A draft schema for ``df`` with ``target`` as the class label."""
    if target not in df.columns:
        near = [c for c in df.columns if str(c).lower() == target.lower()]
        hint = f"; did you mean {near[0]!r}?" if near else f"; the columns are {[str(c) for c in df.columns][:30]}"
        raise InferError(f"target column {target!r} is not in the file{hint}")
    used: set[str] = set()

    def unique(header: Any) -> str:
        base = snake_case(header)
        n, out = 2, base
        while out in used:
            out, n = f"{base}_{n}", n + 1
        used.add(out)
        return out

    tgt = _target(target, unique(target), df[target])
    features, left_out = [], []
    for header in df.columns:
        if header == target:
            continue
        got = _feature(header, unique(header), df[header], max_categories)
        if isinstance(got, str):
            left_out.append(f"{header}: {got}")
        else:
            features.append(got)
    if not features:
        raise InferError("no column can be a feature: " + "; ".join(left_out))
    return Draft(snake_case(name), tgt, features, left_out, len(df))


# ---- YAML with comments --------------------------------------------------------------------------------
def _flow(v: Any) -> str:
    return yaml.safe_dump([v], default_flow_style=True, allow_unicode=True, width=10_000).strip()[1:-1]


def _lines(entry: Entry, indent: str, first: str) -> list[str]:
    out = []
    for i, (k, v) in enumerate(entry.fields.items()):
        note = entry.notes.get(k)
        line = f"{indent}{first if i == 0 else ' ' * len(first)}{k}: {_flow(v)}"
        out.append(f"{line}  # {note}" if note else line)
    return out


def render_yaml(draft: Draft, source: str = "") -> str:
    """The draft as YAML: each guess with a ``# review:`` comment, the left-out columns listed at the top."""
    head = [f"# Draft schema inferred by `credit-score schema infer` from {source or 'a data file'} "
            f"({draft.rows} rows). Review every", "# '# review:' comment, then run `credit-score schema check`. "
            "Format: data/schemas/uci_credit.yaml."]
    if draft.left_out:
        head.append("# Columns left out (not features):")
        head += [f"#   {c}" for c in draft.left_out]
    body = [f"name: {_flow(draft.name)}", "version: 1", "description: Drafted by credit-score schema infer.",
            "duplicates: drop  # review: fully duplicated rows are dropped (keep, or error, to refuse them)",
            "target:"]
    body += _lines(draft.target, "  ", "")
    body.append("features:")
    for f in draft.features:
        body += _lines(f, "  ", "- ")
    return "\n".join(head + body) + "\n"
