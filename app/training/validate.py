"""Re-export of :mod:`app.core.validate` (row validation moved to the core layer: batch scoring uses it too)."""

from app.core.validate import (
    MAX_EXAMPLES,
    Problem,
    Severity,
    ValidationFailed,
    ValidationReport,
    min_rows_per_class,
    validate,
)

__all__ = ["MAX_EXAMPLES", "Problem", "Severity", "ValidationFailed", "ValidationReport", "min_rows_per_class",
           "validate"]
