"""The quality gate: absolute floors on holdout metrics, no regression against the champion, and the latency
budget (the selected candidate's measured scoring cost; over budget only when no candidate was within it)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from app.config import GateConfig, LatencyBudget
from app.training.cost import ScoringCost
from app.training.metrics import HIGHER_IS_BETTER


@dataclass
class GateResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)  # why it failed (empty when passed)
    checks: list[dict[str, Any]] = field(default_factory=list)  # every check, passed or not

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_gate(holdout: dict[str, float], cfg: GateConfig, primary_metric: str,
                  champion: dict[str, float] | None = None, champion_note: str | None = None,
                  cost: ScoringCost | None = None, budget: LatencyBudget | None = None) -> GateResult:
    """Check ``holdout`` metrics against the floors in ``cfg``; when the champion was scored on the same
    holdout (``champion``), that the candidate is no worse on the compared metric by more than epsilon; and
    the candidate's measured scoring ``cost`` against each limit of ``budget`` that is set."""
    checks: list[dict[str, Any]] = []
    reasons: list[str] = []
    for metric, floor in cfg.floors.items():
        value = holdout.get(metric)
        higher = HIGHER_IS_BETTER.get(metric, True)
        ok = value is not None and not math.isnan(value) and (value >= floor if higher else value <= floor)
        checks.append({"check": "floor", "metric": metric, "value": value, "limit": floor, "passed": ok})
        if not ok:
            rel = ">=" if higher else "<="
            shown = "missing" if value is None else f"{value:.4f}"
            reasons.append(f"holdout {metric} {shown} is not {rel} the floor {floor}")
    metric = cfg.compare_metric or primary_metric
    if champion is not None and metric in champion and metric in holdout:
        higher = HIGHER_IS_BETTER.get(metric, True)
        delta = holdout[metric] - champion[metric] if higher else champion[metric] - holdout[metric]
        ok = delta >= -cfg.epsilon
        checks.append({"check": "champion", "metric": metric, "value": holdout[metric],
                       "champion": champion[metric], "epsilon": cfg.epsilon, "passed": ok})
        if not ok:
            reasons.append(f"holdout {metric} {holdout[metric]:.4f} is worse than the champion's "
                           f"{champion[metric]:.4f} on the same holdout by more than {cfg.epsilon}")
    elif champion_note:
        checks.append({"check": "champion", "metric": metric, "passed": True, "note": champion_note})
    _check_budget(cost, budget, checks, reasons)
    return GateResult(passed=not reasons, reasons=reasons, checks=checks)


def _check_budget(cost: ScoringCost | None, budget: LatencyBudget | None, checks: list[dict[str, Any]],
                  reasons: list[str]) -> None:
    for key, what in (("single_row_ms", "single-row"), ("batch_10k_ms", "10,000-row")):
        limit = None if budget is None else getattr(budget, key)
        if limit is None:
            continue
        value = None if cost is None else getattr(cost, key)
        ok = value is not None and value <= limit
        checks.append({"check": "latency_budget", "metric": key, "value": value, "limit": limit, "passed": ok})
        if not ok:
            shown = "was not measured" if value is None else f"{value:.2f} ms is over"
            reasons.append(f"scoring cost ({what}) {shown} the latency budget of {limit:g} ms: no candidate of "
                           f"the grid is within the budget")
