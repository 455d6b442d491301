"""Batch scoring of a file with a registered model, chunk by chunk (constant memory).

Output: the input rows plus ``prediction`` and ``probability`` (of the bad class), or one
``probability_<class>`` column per class for multiclass models; CSV, or Parquet by extension.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from app.core.bundle import ModelBundle
from app.core.labels import predict_labels
from app.core.validate import rename_source_columns, validate


class BatchInputError(ValueError):
    """The input file cannot be scored (unreadable, or rows that fail the schema)."""


def _chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
                yield batch.to_pandas()
        else:
            yield from pd.read_csv(path, chunksize=chunk_size, low_memory=False)
    except pd.errors.EmptyDataError:
        raise BatchInputError(f"input file is empty: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise BatchInputError(f"cannot read {path}: {str(e).splitlines()[0]}") from None


def score_frame(bundle: ModelBundle, frame: pd.DataFrame, first_line: int = 2) -> pd.DataFrame:
    """Validate one chunk against the model's schema and append predictions; raises on bad rows."""
    schema = bundle.schema
    frame = rename_source_columns(frame, schema)
    frame.index = pd.RangeIndex(first_line - 2, first_line - 2 + len(frame))
    clean, report = validate(frame, schema, require_target=False)
    if not report.ok:
        raise BatchInputError("input rows fail the schema:\n" + "\n".join(p.one_line() for p in report.errors))
    proba = bundle.predict_proba(clean[schema.feature_names].to_numpy(dtype=np.float64)).astype(np.float64)
    pred = predict_labels(proba, bundle.bad_index, bundle.threshold)
    out = frame.copy()
    out["prediction"] = np.asarray(bundle.classes, dtype=object)[pred]
    if schema.is_binary:
        out["probability"] = proba[:, bundle.bad_index]
    else:
        for i, c in enumerate(bundle.classes):
            out[f"probability_{c}"] = proba[:, i]
    return out


def score_file(bundle: ModelBundle, input_path: Path, output_path: Path, chunk_size: int = 100_000,
               progress: bool = True) -> int:
    """Score ``input_path`` into ``output_path`` (written atomically); returns the number of rows."""
    from tqdm import tqdm

    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(output_path.name + ".part")
    parquet = output_path.suffix.lower() in {".parquet", ".pq"}
    n, writer = 0, None
    try:
        with open(tmp, "wb") as fh, tqdm(unit="row", unit_scale=True, file=sys.stderr, disable=not progress,
                                          desc="scoring") as bar:
            for chunk in _chunks(input_path, chunk_size):
                scored = score_frame(bundle, chunk, first_line=n + 2)
                if parquet:
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    table = pa.Table.from_pandas(scored, preserve_index=False)
                    writer = writer or pq.ParquetWriter(fh, table.schema)
                    writer.write_table(table)
                else:
                    fh.write(scored.to_csv(index=False, header=(n == 0)).encode())
                n += len(scored)
                bar.update(len(scored))
            if writer is not None:
                writer.close()
        if n == 0:
            raise BatchInputError(f"input file has no rows: {input_path}")
        tmp.replace(output_path)
    finally:
        tmp.unlink(missing_ok=True)
    return n
