"""MLflow stores for tests, built once per test process and copied.

Creating an MLflow SQLite store runs every schema migration (about 1.6 s of CPU here); a test that only needs
an empty store gets a copy of one migrated store instead (:func:`seed_mlflow_store`). A models directory that
already holds registered versions is copied with :func:`clone_models_dir`, which re-points the absolute
artifact URIs MLflow records in its database at the copy.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import sqlite3
import tempfile
from pathlib import Path


@functools.cache
def migrated_mlflow_db() -> Path:
    """An empty MLflow SQLite store with every migration applied (one per test process)."""
    from mlflow import MlflowClient

    root = Path(tempfile.mkdtemp(prefix="credit-score-mlflow-template-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    db = root / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


def seed_mlflow_store(db: Path) -> Path:
    """Put a copy of the migrated empty store at ``db`` unless a store is already there."""
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_mlflow_db(), db)
    return db


def clone_models_dir(src: Path, dest: Path) -> Path:
    """Copy a models directory (MLflow SQLite store, file artifacts, prediction store) to ``dest`` and re-point
    every path of ``src`` recorded in its store (artifact locations, sources, as paths or file URIs) at ``dest``:
    the copy is a store of its own, the original is untouched."""
    shutil.copytree(src, dest)
    old, new = str(Path(src).resolve()), str(Path(dest).resolve())
    with sqlite3.connect(dest / "mlflow.db") as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for col in db.execute(f'PRAGMA table_info("{table}")').fetchall():
                if "CHAR" in col[2].upper() or "TEXT" in col[2].upper():
                    db.execute(f'UPDATE "{table}" SET "{col[1]}" = replace("{col[1]}", ?, ?) '  # noqa: S608
                               f'WHERE "{col[1]}" LIKE ?', (old, new, f"%{old}%"))
    return dest
