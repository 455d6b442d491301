"""A candidate's scoring cost: how long the model takes to score one row and 10,000 rows.

What is timed is the model's own scoring, the same call as :meth:`app.core.bundle.ModelBundle.predict_proba`:
the fitted feature transformer, then the classifier's ``predict_proba``, on one thread (as serving sets a loaded
model, :meth:`~app.core.bundle.ModelBundle.set_single_thread`). It is not the service's cost: the service scores
through its own fast paths (``app/serving``), which training does not import, plus HTTP and JSON. The figures
compare candidates with each other and bound what the service has to beat; the service's own speed is measured
by ``bench/serve_bench.py``.

* single row: a (1, n_features) array per call, a different row each call, after a few warm-up calls; the
  median of up to :data:`SINGLE_ROW_CALLS` calls (at least :data:`SINGLE_ROW_MIN_CALLS`, stopping early after
  :data:`SINGLE_ROW_SECONDS`, so a slow model costs the training run about that long);
* 10,000 rows: one array of :data:`BATCH_ROWS` rows drawn with replacement from the given rows; the median of up
  to :data:`BATCH_CALLS` calls, stopping after :data:`BATCH_SECONDS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

BATCH_ROWS = 10_000
SINGLE_ROW_CALLS, SINGLE_ROW_MIN_CALLS, SINGLE_ROW_SECONDS, WARMUP_CALLS = 50, 10, 0.5, 3
BATCH_CALLS, BATCH_SECONDS = 3, 0.3


@dataclass(frozen=True)
class ScoringCost:
    single_row_ms: float  # median over calls
    batch_10k_ms: float  # median over calls, for BATCH_ROWS rows
    single_row_calls: int
    batch_calls: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def single_threaded(classifier: Any) -> Iterator[Any]:
    """The classifier set to one thread while the block runs, and set back to its own ``n_jobs`` after."""
    params = classifier.get_params()
    if "n_jobs" not in params:
        yield classifier
        return
    before = params["n_jobs"]
    classifier.set_params(n_jobs=1)
    try:
        yield classifier
    finally:
        classifier.set_params(n_jobs=before)


def _timed(call: Callable[[], Any], min_calls: int, max_calls: int, max_seconds: float) -> list[float]:
    durations: list[float] = []
    start = time.perf_counter()
    while len(durations) < max_calls:
        t0 = time.perf_counter()
        call()
        durations.append(time.perf_counter() - t0)
        if len(durations) >= min_calls and time.perf_counter() - start >= max_seconds:
            break
    return durations


def measure_scoring_cost(features: Any, classifier: Any, rows: np.ndarray, seed: int = 0) -> ScoringCost:
    """Time ``classifier.predict_proba(features.transform(x))`` on one thread for one row and for
    :data:`BATCH_ROWS` rows drawn from ``rows`` (raw feature rows in schema order)."""
    rows = np.asarray(rows, dtype=np.float64)
    rng = np.random.default_rng(seed)
    batch = rows[rng.integers(0, len(rows), BATCH_ROWS)]
    singles = [rows[i:i + 1] for i in rng.integers(0, len(rows), SINGLE_ROW_CALLS + WARMUP_CALLS)]
    remaining = iter(singles)

    def one() -> np.ndarray:
        return classifier.predict_proba(features.transform(next(remaining)))

    with single_threaded(classifier):
        _timed(one, WARMUP_CALLS, WARMUP_CALLS, 0.0)
        single = _timed(one, SINGLE_ROW_MIN_CALLS, SINGLE_ROW_CALLS, SINGLE_ROW_SECONDS)
        many = _timed(lambda: classifier.predict_proba(features.transform(batch)), 1, BATCH_CALLS, BATCH_SECONDS)
    return ScoringCost(single_row_ms=float(np.median(single) * 1e3), batch_10k_ms=float(np.median(many) * 1e3),
                       single_row_calls=len(single), batch_calls=len(many))
