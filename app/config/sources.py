"""Training data sources and the policy that combines them (``data:`` in a training config, defaults here).

Three kinds of source (:mod:`app.sources` reads them):

``file``        the base data: a CSV/Parquet file, local or an fsspec URL (``s3://...``; needs fsspec and the
                filesystem's package). No ``path``: ``--data``, else ``CREDIT_SCORE_DATA``, else the embedded
                synthetic set.
``sql``         rows from a database: a SQLAlchemy URL (``url``, or ``url_env``: the name of an environment
                variable holding it, so no password sits in a config file) and a ``query`` or a ``table``.
``production``  labelled production data: predictions joined with their outcomes from the prediction store (no
                ``url``/``url_env``: the configured store, ``CREDIT_SCORE_STORE_URL`` or the embedded SQLite file),
                scored in the last ``window_days``, shadow scores excluded, one row per prediction id, the features
                as they were scored. Rows whose stored features no longer match the schema are counted and left
                out.

Policy: a source with fewer usable rows than its ``min_rows`` is not used (reported, never an error);
``max_rows`` caps a source (production keeps its newest rows, the others a seeded sample); ``required`` sources
(file sources unless said otherwise) fail the training when they cannot be read or fall short.
``holdout: newest`` holds out the newest ``holdout_fraction`` of the production rows (by scoring time) when
production rows are used, so the gate judges the challenger, and scores the champion, on the latest
population; otherwise (or with ``holdout: random``) a stratified random split over all rows.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SourceKind = Literal["file", "sql", "production"]


class DataSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: SourceKind
    path: str | None = None  # file: local path or fsspec URL (None: --data / CREDIT_SCORE_DATA / synthetic)
    url: str | None = None  # sql: SQLAlchemy URL; production: the store's (None: the configured store)
    url_env: str | None = None  # ... or the environment variable that holds the URL (secrets stay out of files)
    query: str | None = None  # sql: a SELECT returning the schema's columns (or their source names)
    table: str | None = None  # sql: or a whole table
    window_days: float | None = Field(default=None, gt=0)  # production: predictions scored in the last N days
    min_rows: int = Field(default=0, ge=0)  # fewer usable rows: the source is left out (reported)
    max_rows: int | None = Field(default=None, ge=1)  # cap: production keeps its newest rows, others a sample
    # unreadable or short of min_rows: fail the training instead of leaving the source out (None: file sources
    # are required, sql and production ones are not)
    required: bool | None = None

    @model_validator(mode="after")
    def _fits_kind(self) -> DataSource:
        if self.url and self.url_env:
            raise ValueError(f"source {self.name!r}: give url or url_env, not both")
        if self.kind == "sql":
            if not (self.url or self.url_env):
                raise ValueError(f"source {self.name!r}: a sql source needs url or url_env")
            if bool(self.query) == bool(self.table):
                raise ValueError(f"source {self.name!r}: a sql source needs exactly one of query or table")
        elif self.query or self.table:
            raise ValueError(f"source {self.name!r}: query/table are for sql sources")
        if self.kind != "file" and self.path:
            raise ValueError(f"source {self.name!r}: path is for file sources")
        if self.kind == "file" and (self.url or self.url_env):
            raise ValueError(f"source {self.name!r}: a file source takes path, not url")
        if self.kind != "production" and self.window_days is not None:
            raise ValueError(f"source {self.name!r}: window_days is for production sources")
        return self


def _default_sources() -> list[DataSource]:
    # the base data as before, plus the production outcomes once there are enough of them (90 days: the store's
    # default retention; 200 rows: the monitor's retrain_min_labels)
    return [DataSource(name="base", kind="file"),
            DataSource(name="production", kind="production", window_days=90.0, min_rows=200)]


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[DataSource] = Field(default_factory=_default_sources)
    holdout: Literal["newest", "random"] = "newest"

    @model_validator(mode="after")
    def _names(self) -> DataConfig:
        if not self.sources:
            raise ValueError("data.sources needs at least one source")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"data.sources: names must be unique, got {names}")
        return self
