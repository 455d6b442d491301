"""Synthetic data benchmark: generate and validate 1M rows (target: under 60 s on 2 cores).

    python bench/synthetic_bench.py [--rows 1000000]

Baseline measured in the same run: pandas writing and re-reading the same frame as CSV (the I/O floor).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from app.config import PROJECT_ROOT
from app.datasets import read_table, write_synthetic
from app.schema import DatasetSchema
from app.training.validate import validate


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    schema = DatasetSchema.load(PROJECT_ROOT / "data/schemas/uci_credit.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synth.csv"
        t0 = time.perf_counter()
        write_synthetic(path, args.rows, seed=42)
        t_gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        df, report = validate(read_table(path, schema), schema)
        t_val = time.perf_counter() - t0
        assert report.ok, report.render()
        t0 = time.perf_counter()
        raw = pd.read_csv(path)
        raw.to_csv(Path(tmp) / "copy.csv", index=False)
        t_base = time.perf_counter() - t0
    total = t_gen + t_val
    print(f"{args.rows} rows: generate+write {t_gen:.1f} s, read+validate {t_val:.1f} s, total {total:.1f} s "
          f"(limit 60 s); {report.rows_out} rows kept, default rate {df['default'].mean():.3f}")
    print(f"baseline (pandas read_csv + to_csv of the same file): {t_base:.1f} s; ratio ours/baseline "
          f"{total / t_base:.2f}")
    return 0 if total < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
