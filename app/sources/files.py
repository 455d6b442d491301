"""The base data: a CSV or Parquet file, local or an fsspec URL (``s3://bucket/train.parquet``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from app.core.schema import DatasetSchema
from app.core.validate import rename_source_columns
from app.datasets import DataError, file_sha256, read_table
from app.sources.frame import SourceFrame


def is_url(path: str | Path) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def read_file_source(name: str, path: str | Path, schema: DatasetSchema) -> SourceFrame:
    """A local file (its bytes hashed for lineage) or a URL read through fsspec. Raises DataError."""
    if not is_url(path):
        local = Path(str(path).removeprefix("file://"))
        return SourceFrame(name=name, kind="file", location=str(local), raw=read_table(local, schema),
                           file_sha256=file_sha256(local))
    url = str(path)
    scheme = url.split("://", 1)[0]
    parquet = url.lower().split("?", 1)[0].endswith((".parquet", ".pq"))
    try:
        import fsspec  # noqa: F401 (pandas reads URLs through it)
    except ImportError:
        raise DataError(f"reading {scheme}:// URLs needs the fsspec package (and the filesystem's own, e.g. s3fs); "
                        f"install them or give a local path") from None
    try:
        df = pd.read_parquet(url) if parquet else pd.read_csv(url, low_memory=False)
    except ImportError as e:
        raise DataError(f"cannot read {url}: {str(e).splitlines()[0]}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as e:
        raise DataError(f"cannot read {url}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if len(df.columns) == 0:
        raise DataError(f"data file has no columns: {url}")
    return SourceFrame(name=name, kind="file", location=url, raw=rename_source_columns(df, schema))
