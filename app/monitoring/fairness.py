"""Re-export of :mod:`app.core.fairness` (the fairness table moved to the core layer: training and the monitor
both build it)."""

from app.core.fairness import (
    AGE_EDGES,
    FOUR_FIFTHS,
    RATES,
    add_relative_approval,
    fairness_ratios,
    fairness_table,
    groups,
)

__all__ = ["AGE_EDGES", "FOUR_FIFTHS", "RATES", "add_relative_approval", "fairness_ratios", "fairness_table",
           "groups"]
