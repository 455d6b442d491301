"""Rows from a database: a SQLAlchemy URL and a query or a table."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from app.core.schema import DatasetSchema
from app.core.validate import rename_source_columns
from app.datasets import DataError
from app.sources.frame import SourceFrame, describe_db_error, redact


def read_sql_source(name: str, url: str, schema: DatasetSchema, query: str | None = None,
                    table: str | None = None) -> SourceFrame:
    """``query`` (a SELECT) or ``table``; columns are the schema's names or their source names. Raises
    DataError with the URL's password hidden and no SQL parameters."""
    where = f"{redact(url)} ({'table ' + table if table else 'query'})"
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as e:
        raise DataError(f"source {name!r}: invalid database URL {redact(url)}: {str(e).splitlines()[0]}") from None
    try:
        with engine.connect() as conn:
            df = pd.read_sql_table(table, conn) if table else pd.read_sql_query(sa.text(query or ""), conn)
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as e:  # pandas wraps the driver's error
        cause = e.__cause__ if isinstance(e, pd.errors.DatabaseError) and e.__cause__ is not None else e
        raise DataError(f"source {name!r}: cannot read {where}: {describe_db_error(cause)}") from None
    except ValueError as e:  # pandas: no such table
        raise DataError(f"source {name!r}: cannot read {where}: {str(e).splitlines()[0]}") from None
    finally:
        engine.dispose()
    return SourceFrame(name=name, kind="sql", location=where, raw=rename_source_columns(df, schema))
