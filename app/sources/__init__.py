"""Training data sources: what each one read, and the readers (:mod:`app.config.sources` configures them).

Modules, one job each:
    ``store_tables``  the prediction store's tables (definitions only; monitoring re-exports them)
    ``frame``         :class:`SourceFrame`, one source's rows as read, with what was left out and why
    ``files``         the base data: a CSV/Parquet file, local or an fsspec URL
    ``sql``           rows from a SQLAlchemy URL, by query or table
    ``production``    labelled production data: predictions joined with their outcomes from the store

This package sits below training and monitoring (see .importlinter): training reads production outcomes through
it without importing monitoring code. Readers return rows with the schema's column names; validation and the
combination policy are training's (:mod:`app.training.data`).
"""
