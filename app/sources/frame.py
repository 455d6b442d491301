"""One source's rows as read (schema column names, untyped), and what the reader left out and why."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa


@dataclass
class SourceFrame:
    name: str
    kind: str  # file | sql | production
    location: str  # where it was read (a path, or a URL without its password, with the query or table)
    raw: pd.DataFrame  # the schema's feature and target columns (file and sql: as read, other columns too)
    scored_at: np.ndarray | None = None  # production: each row's scoring time (naive UTC), aligned with raw
    window: tuple[datetime | None, datetime] | None = None  # production: the scoring-time window read
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> rows left out
    notes: list[str] = field(default_factory=list)  # what a person should know (left-out rows, why unused)
    file_sha256: str | None = None  # a local file's bytes

    def exclude(self, reason: str, count: int, note: str | None = None) -> None:
        if count:
            self.excluded[reason] = self.excluded.get(reason, 0) + int(count)
            if note:
                self.notes.append(note)


def frame_digest(df: pd.DataFrame) -> str:
    """sha256 of a frame's rows and column names (order included): the rows a model was trained on."""
    h = hashlib.sha256("\x1f".join(map(str, df.columns)).encode())
    if len(df):
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def redact(url: str) -> str:
    """A SQLAlchemy URL without its password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "<unparsable database URL>"


def describe_db_error(e: BaseException) -> str:
    """One line about a database error, without the statement or its parameters."""
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip().splitlines()
    return f"{type(orig or e).__name__}: {text[0][:300] if text else ''}"
