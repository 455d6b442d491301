"""The service's Prometheus helpers."""

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from app.monitoring.metrics import observe_many

BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9)


def _samples(hist: Histogram) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels.get("le", "")): s.value for m in hist.collect() for s in m.samples
            if not s.name.endswith("_created")}


@pytest.mark.parametrize("n", [3, 1000])
def test_observe_many_counts_as_one_observe_per_value(n):
    values = np.random.default_rng(n).random(n)
    values[:3] = [0.25, 0.5, 1.0]  # on a bound: the bucket of that bound, as observe; above the last: +Inf
    one, many = (Histogram("h", "h", buckets=BUCKETS, registry=CollectorRegistry()) for _ in range(2))
    for v in values:
        one.observe(float(v))
    observe_many(many, values)  # 3 values: the loop; 1000: the bucket counts
    a, b = _samples(one), _samples(many)
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert b[k] == pytest.approx(v, rel=1e-12), k
    assert b[("h_count", "")] == n
