"""Re-export of :mod:`app.serving.batch` (batch scoring is serving: it needs the core layer only)."""

from app.serving.batch import BatchInputError, score_file, score_frame

__all__ = ["BatchInputError", "score_file", "score_frame"]
