"""Choosing the candidate to register: the best on the selection metric among the candidates within the
latency budget (:class:`app.config.LatencyBudget`), ties going to the earlier one in the grid.

When no candidate is within the budget, the best on the metric is chosen all the same so that the run still
produces its report (with every candidate's cost, to choose a budget from) and a registered version; the quality
gate then fails it with the reason (:func:`app.training.gate.evaluate_gate`) and it is not promoted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.config import LatencyBudget
from app.training.cost import ScoringCost
from app.training.grid import ComboResult
from app.training.metrics import HIGHER_IS_BETTER


@dataclass
class Selection:
    best: ComboResult
    over_budget: dict[str, list[str]] = field(default_factory=dict)  # label -> why, for candidates over budget
    within_budget: bool = True  # False: no candidate was within the budget

    def reasons(self, label: str) -> list[str]:
        return self.over_budget.get(label, [])


def budget_excess(cost: ScoringCost | None, budget: LatencyBudget) -> list[str]:
    """Why a candidate's measured cost is over ``budget`` (empty when it is within, or there is no budget)."""
    limits = [(name, getattr(budget, key), key) for name, key in (("single row", "single_row_ms"),
                                                                   ("10,000 rows", "batch_10k_ms"))]
    out = []
    for name, limit, key in limits:
        if limit is None:
            continue
        value = None if cost is None else getattr(cost, key)
        if value is None:
            out.append(f"{name}: cost not measured")
        elif value > limit:
            out.append(f"{name} {value:.2f} ms > {limit:g} ms")
    return out


def select_candidate(results: list[ComboResult], metric: str, budget: LatencyBudget) -> Selection:
    """The best fitted candidate on ``metric`` within ``budget``; raises RuntimeError when none could be fitted."""
    ok = [r for r in results if r.ok]
    if not ok:
        raise RuntimeError("every combination failed: " + "; ".join(f"{r.label}: {r.error}" for r in results))
    sign = 1.0 if HIGHER_IS_BETTER.get(metric, True) else -1.0
    over = {r.label: why for r in ok if (why := budget_excess(r.cost, budget))}
    within = [r for r in ok if r.label not in over]
    best = max(within or ok, key=lambda r: (sign * r.mean()[metric], -results.index(r)))
    return Selection(best=best, over_budget=over, within_budget=bool(within))
