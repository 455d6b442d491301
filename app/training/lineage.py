"""The training data's lineage as MLflow datasets on the training run (``mlflow.log_input``).

One dataset per source the training used (context ``training``): its name, the sha256 of the rows used as the
digest (MLflow keeps 36 characters; the tag ``sha256`` has all of it), the source (a local file, or a database
source with the URL's password hidden), the schema and profile MLflow derives from the rows, and tags: kind,
rows, holdout rows, rows left out by reason, the scoring-time window. The holdout is one more dataset (context
``holdout``). ``credit-score registry show`` reads them back (:meth:`app.registry.Registry.datasets`).
"""

from __future__ import annotations

import json
from typing import Any

from app.sources.frame import frame_digest
from app.training.data import SourceUse, TrainingData

DIGEST_CHARS = 36  # MLflow's datasets.digest column


def _database_source(kind: str, location: str):
    from mlflow.data.dataset_source import DatasetSource

    class DatabaseDatasetSource(DatasetSource):
        """Rows read from a database (a SQL source, the prediction store): where, without the password."""

        def __init__(self, source_kind: str, where: str):
            self.kind, self.where = source_kind, where

        @staticmethod
        def _get_source_type() -> str:
            return "database"

        def load(self, **kwargs):  # noqa: ARG002 (the interface's)
            raise NotImplementedError("read the rows with credit-score train's sources")

        @staticmethod
        def _can_resolve(raw_source: Any) -> bool:  # noqa: ARG004
            return False

        @classmethod
        def _resolve(cls, raw_source: Any):
            raise NotImplementedError

        def to_dict(self) -> dict[str, Any]:
            return {"kind": self.kind, "location": self.where}

        @classmethod
        def from_dict(cls, source_dict: dict[Any, Any]):
            return cls(source_dict.get("kind", ""), source_dict.get("location", ""))

    return DatabaseDatasetSource(kind, location)


def _source(use: SourceUse):
    if use.kind == "file":  # a local path or a URL: MLflow resolves what it knows (local files, s3, http, ...)
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.exceptions import MlflowException

        try:
            return resolve_dataset_source(use.location)
        except MlflowException:
            return _database_source("url", use.location)
    return _database_source(use.kind, use.location)


def source_tags(use: SourceUse) -> dict[str, str]:
    tags = {"kind": use.kind, "rows": str(use.rows), "holdout_rows": str(use.holdout_rows),
            "sha256": use.digest or "", "excluded": json.dumps(use.excluded, sort_keys=True)}
    if use.window:
        tags["window"] = json.dumps(use.window)
    if use.file_sha256:
        tags["file_sha256"] = use.file_sha256
    return tags


def log_datasets(data: TrainingData, target: str) -> None:
    """Log the used sources and the holdout as inputs of the active MLflow run."""
    import warnings

    with warnings.catch_warnings():  # MLflow's hints on source resolution and integer columns: not for this log
        warnings.simplefilter("ignore", UserWarning)
        _log(data, target)


def _log(data: TrainingData, target: str) -> None:
    import mlflow

    for use in data.sources:
        if not use.used:
            continue
        ds = mlflow.data.from_pandas(data.frames[use.name], source=_source(use), targets=target, name=use.name,
                                     digest=(use.digest or "")[:DIGEST_CHARS])
        mlflow.log_input(ds, context="training", tags=source_tags(use))
    if data.holdout is not None:
        held = data.df[data.holdout].reset_index(drop=True)
        digest = frame_digest(held)
        ds = mlflow.data.from_pandas(held, source=_database_source("holdout", data.holdout_rule), targets=target,
                                     name="holdout", digest=digest[:DIGEST_CHARS])
        mlflow.log_input(ds, context="holdout", tags={"rule": data.holdout_rule[:500], "rows": str(len(held)),
                                                      "sha256": digest})
