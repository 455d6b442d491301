"""Champion vs challenger on live traffic: per-variant metrics with confidence intervals and a significance test.

Data: predictions with outcomes (``/feedback``) made in the last ``monitor_performance_days`` by the current
champion version (variant ``champion``) and the current challenger version (variant ``challenger``; in
``split`` mode it answered the request, in ``shadow`` mode it scored the same request beside the champion).

Primary metric: ROC-AUC of the bad class, because it does not depend on either model's decision threshold.
Test: DeLong's method (DeLong, DeLong & Clarke-Pearson 1988; the fast midrank algorithm of Sun & Xu 2014) gives
each AUC's variance; for split traffic the two samples are independent, ``z = (AUC_b - AUC_a) /
sqrt(V_a + V_b)``; for shadow traffic both models scored the same requests, so the paired form with their
covariance is used on the requests both scored. Two-sided p-value; 95 % intervals for each AUC and for the
difference. Secondary metrics (accuracy, precision and recall of the bad class, F1 macro) get Wilson or
bootstrap intervals but do not decide.

Verdict: ``insufficient_data`` while either variant has fewer than ``abtest_min_samples`` outcomes or fewer than
``abtest_min_positives`` of either class; ``challenger_better`` / ``champion_better`` when p < ``abtest_alpha``;
else ``no_significant_difference``. ``credit-score abtest promote`` moves ``champion`` to the challenger only on
``challenger_better``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from app.monitoring.store import PredictionStore, utcnow

INSUFFICIENT, CHALLENGER_BETTER, CHAMPION_BETTER, NO_DIFFERENCE = (
    "insufficient_data", "challenger_better", "champion_better", "no_significant_difference")
Z95 = 1.959963984540054


# ---- statistics --------------------------------------------------------------------------------------------
def _midrank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    z = x[order]
    n = len(x)
    t = np.zeros(n, dtype=float)
    i = 0
    while i < n:
        j = i
        while j < n and z[j] == z[i]:
            j += 1
        t[i:j] = 0.5 * (i + j - 1) + 1
        i = j
    out = np.empty(n, dtype=float)
    out[order] = t
    return out


def delong(y_bad: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of ``scores`` (k, n) for the binary labels ``y_bad`` (n,) and their DeLong covariance (k, k)."""
    y = np.asarray(y_bad).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    pos, neg = scores[:, y], scores[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    if m < 2 or n < 2:
        raise ValueError("DeLong needs at least two rows of each class")
    k = scores.shape[0]
    tx = np.vstack([_midrank(pos[i]) for i in range(k)])
    ty = np.vstack([_midrank(neg[i]) for i in range(k)])
    tz = np.vstack([_midrank(np.concatenate([pos[i], neg[i]])) for i in range(k)])
    aucs = tz[:, :m].sum(axis=1) / m / n - (m + 1.0) / (2.0 * n)
    v01 = (tz[:, :m] - tx) / n
    v10 = 1.0 - (tz[:, m:] - ty) / m
    cov = np.atleast_2d(np.cov(v01)) / m + np.atleast_2d(np.cov(v10)) / n
    return aucs, cov


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def _norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def f1_macro(y: np.ndarray, pred: np.ndarray) -> float:
    """Macro F1 over the two classes of boolean labels, as scikit-learn's ``f1_score(average="macro",
    labels=[False, True], zero_division=0)`` (a class with no true or predicted rows scores 0), in plain numpy:
    the bootstrap calls it hundreds of times and scikit-learn's argument checks cost ~25 ms a call."""
    total = 0.0
    for yc, pc in ((y, pred), (~y, ~pred)):
        tp = int((yc & pc).sum())
        wrong = int((yc ^ pc).sum())  # false positives + false negatives
        total += 2 * tp / (2 * tp + wrong) if tp else 0.0
    return total / 2


def variant_metrics(y_bad: np.ndarray, p_bad: np.ndarray, pred_bad: np.ndarray, seed: int = 0,
                    n_boot: int = 200) -> dict[str, Any]:
    """Metrics of one variant with 95 % intervals (AUC: DeLong; proportions: Wilson; F1 macro: bootstrap)."""
    y, pred = np.asarray(y_bad, dtype=bool), np.asarray(pred_bad, dtype=bool)
    n, pos = len(y), int(y.sum())
    out: dict[str, Any] = {"n": n, "bad": pos, "good": n - pos}
    if pos >= 2 and n - pos >= 2:
        auc, cov = delong(y, p_bad[None, :])
        se = math.sqrt(max(cov[0, 0], 0.0))
        out["roc_auc"] = {"value": float(auc[0]), "ci": [max(0.0, auc[0] - Z95 * se), min(1.0, auc[0] + Z95 * se)],
                          "se": se}
    else:
        out["roc_auc"] = {"value": float("nan"), "ci": [float("nan"), float("nan")], "se": float("nan")}
    correct = int((y == pred).sum())
    tp, pp = int((y & pred).sum()), int(pred.sum())
    out["accuracy"] = {"value": correct / n if n else float("nan"), "ci": list(wilson(correct, n))}
    out["precision_bad"] = {"value": tp / pp if pp else float("nan"), "ci": list(wilson(tp, pp))}
    out["recall_bad"] = {"value": tp / pos if pos else float("nan"), "ci": list(wilson(tp, pos))}
    if n:
        f1 = f1_macro(y, pred)
        rng = np.random.default_rng(seed)
        boots = []
        for _ in range(n_boot):
            idx = rng.integers(0, n, n)
            boots.append(f1_macro(y[idx], pred[idx]))
        out["f1_macro"] = {"value": f1, "ci": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))]}
    else:
        out["f1_macro"] = {"value": float("nan"), "ci": [float("nan"), float("nan")]}
    return out


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray], paired: bool) -> dict[str, Any]:
    """DeLong test of AUC(b) - AUC(a). ``a``/``b``: {"y": bad labels, "p": P(bad)}; paired = same rows."""
    if paired:
        aucs, cov = delong(a["y"], np.vstack([a["p"], b["p"]]))
        var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
        diff = float(aucs[1] - aucs[0])
    else:
        aa, ca = delong(a["y"], a["p"][None, :])
        ab, cb = delong(b["y"], b["p"][None, :])
        var = ca[0, 0] + cb[0, 0]
        diff = float(ab[0] - aa[0])
    se = math.sqrt(max(var, 0.0))
    if se == 0:
        z, p = (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    else:
        z = diff / se
        p = 2 * _norm_sf(abs(z))
    return {"metric": "roc_auc", "test": "delong_paired" if paired else "delong_unpaired", "difference": diff,
            "ci": [diff - Z95 * se, diff + Z95 * se], "se": se, "z": z, "p_value": p}


# ---- the report ------------------------------------------------------------------------------------------
def _arrays(rows: list[dict[str, Any]], bad: str) -> dict[str, np.ndarray]:
    return {"id": np.array([r["request_id"] for r in rows], dtype=object),
            "y": np.array([r["outcome"] == bad for r in rows], dtype=bool),
            "p": np.array([r["probability"] for r in rows], dtype=float),
            "pred": np.array([r["predicted_class"] == bad for r in rows], dtype=bool)}


def ab_report(store: PredictionStore, champion: str | None, challenger: str | None, bad_class: str,
              min_samples: int = 200, min_positives: int = 20, alpha: float = 0.05, days: float = 30.0,
              now: datetime | None = None, max_rows: int | None = None) -> dict[str, Any]:
    """Champion vs challenger on labelled live traffic, with the verdict (see the module docstring)."""
    now = now or utcnow()
    out: dict[str, Any] = {"champion": champion, "challenger": challenger, "window_days": days,
                           "primary_metric": "roc_auc", "alpha": alpha, "min_samples": min_samples,
                           "min_positives": min_positives, "variants": {}, "test": None}
    if champion is None or challenger is None:
        out.update(verdict=INSUFFICIENT, reason="no challenger registered" if champion else "no champion registered")
        return out
    rows = store.read_predictions(now - timedelta(days=days), now + timedelta(seconds=1), labelled_only=True,
                                  versions=[champion, challenger], limit=max_rows)
    a_rows = [r for r in rows if r["variant"] == "champion" and r["model_version"] == champion and not r["shadow"]]
    b_rows = [r for r in rows if r["variant"] == "challenger" and r["model_version"] == challenger]
    a, b = _arrays(a_rows, bad_class), _arrays(b_rows, bad_class)
    shadow = any(r["shadow"] for r in b_rows)
    out["mode"] = "shadow" if shadow else "split"
    out["variants"] = {"champion": {"version": champion, **variant_metrics(a["y"], a["p"], a["pred"], seed=1)},
                       "challenger": {"version": challenger, **variant_metrics(b["y"], b["p"], b["pred"], seed=2)}}
    short = [f"{name}: {v['n']} outcomes ({v['bad']} bad, {v['good']} good)" for name, v in out["variants"].items()
             if v["n"] < min_samples or v["bad"] < min_positives or v["good"] < min_positives]
    if short:
        out.update(verdict=INSUFFICIENT, reason=f"need at least {min_samples} outcomes per variant with "
                                                f"{min_positives} of each class; have " + "; ".join(short))
        return out
    if shadow:  # both models scored the same requests: pair them
        common = np.intersect1d(a["id"].astype(str), b["id"].astype(str))
        ia = {rid: i for i, rid in enumerate(a["id"])}
        ib = {rid: i for i, rid in enumerate(b["id"])}
        sel_a = np.array([ia[r] for r in common], dtype=int)
        sel_b = np.array([ib[r] for r in common], dtype=int)
        pa = {"y": a["y"][sel_a], "p": a["p"][sel_a]}
        pb = {"y": b["y"][sel_b], "p": b["p"][sel_b]}
        test = compare(pa, pb, paired=True) if len(common) >= min_samples else compare(a, b, paired=False)
        test["paired_rows"] = int(len(common))
    else:
        test = compare(a, b, paired=False)
    out["test"] = test
    if test["p_value"] < alpha and test["difference"] > 0:
        verdict = CHALLENGER_BETTER
    elif test["p_value"] < alpha and test["difference"] < 0:
        verdict = CHAMPION_BETTER
    else:
        verdict = NO_DIFFERENCE
    va, vb = out["variants"]["champion"]["roc_auc"]["value"], out["variants"]["challenger"]["roc_auc"]["value"]
    out.update(verdict=verdict, reason=f"ROC-AUC challenger v{challenger} {vb:.4f} vs champion v{champion} {va:.4f}: "
                                       f"difference {test['difference']:+.4f} (95 % CI {test['ci'][0]:+.4f} .. "
                                       f"{test['ci'][1]:+.4f}), {test['test']} p = {test['p_value']:.3g}")
    return out


def render(report: dict[str, Any]) -> str:
    """The report as text for the terminal."""
    lines = [f"A/B: champion v{report['champion']} vs challenger v{report['challenger']} "
             f"(outcomes of the last {report['window_days']:g} days, mode {report.get('mode', '?')})"]
    for name, v in report["variants"].items():
        auc = v["roc_auc"]
        lines.append(f"  {name:<10} v{v['version']:<4} n={v['n']:<6} bad={v['bad']:<5} "
                     f"roc_auc={_f(auc['value'])} [{_f(auc['ci'][0])}, {_f(auc['ci'][1])}]  "
                     f"f1_macro={_f(v['f1_macro']['value'])} [{_f(v['f1_macro']['ci'][0])}, "
                     f"{_f(v['f1_macro']['ci'][1])}]  accuracy={_f(v['accuracy']['value'])}  "
                     f"precision_bad={_f(v['precision_bad']['value'])}  recall_bad={_f(v['recall_bad']['value'])}")
    lines.append(f"verdict: {report['verdict']}: {report.get('reason', '')}")
    return "\n".join(lines)


def _f(v: float) -> str:
    return "  nan " if v is None or not math.isfinite(v) else f"{v:.4f}"
