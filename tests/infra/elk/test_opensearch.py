"""Filebeat's events, bulk-indexed with opensearch-py into an OpenSearch-API store (PyPI osmem-server) under our
index template, then queried back, and every Kibana visualization's aggregation run on them.

The store stands in for Elasticsearch (not obtainable here). The template goes in through the composable
index-template API with the changes of elk_tools.opensearch_template (no ILM setting, no data stream,
constant_keyword -> keyword) and with dynamic "strict", so any field of the events that the template does not
map fails the bulk request instead of being silently left unindexed.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.infra.elk.elk_tools import KIBANA, kql_to_lucene, load_template, opensearch_template

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INDEX = "logs-credit_score-test"  # what Logstash's data_stream output names it with namespace "test"


def as_logstash_writes(event: dict) -> dict:
    """What the Logstash pipeline adds before indexing (elk/logstash/pipeline/credit-score.conf): the data stream
    fields (data_stream_sync_fields) and event.dataset; @metadata is never indexed."""
    doc = {k: v for k, v in event.items() if k != "@metadata"}
    doc["data_stream"] = {"type": "logs", "dataset": "credit_score", "namespace": "test"}
    doc.setdefault("event", {}).setdefault("dataset", "credit_score")
    return doc


@pytest.fixture(scope="module")
def indexed(opensearch, shipped):
    from opensearchpy import helpers

    events, _ = shipped
    answer = opensearch.indices.put_index_template(name="credit-score-logs", body=opensearch_template(load_template()))
    assert answer.get("acknowledged") is True
    docs = [as_logstash_writes(e) for e in events]
    ok, errors = helpers.bulk(opensearch, [{"_op_type": "create", "_index": INDEX, "_source": d} for d in docs],
                              refresh=True, raise_on_error=False)
    return docs, ok, errors


def _count(client, query: dict) -> int:
    return client.count(index=INDEX, body={"query": query})["count"]


def test_bulk_indexing_under_the_strict_template_has_no_error(indexed, opensearch):
    docs, ok, errors = indexed
    assert not errors, json.dumps(errors[:3], indent=1)
    assert ok == len(docs) and _count(opensearch, {"match_all": {}}) == len(docs)
    mapping = opensearch.indices.get_mapping(index=INDEX)[INDEX]["mappings"]
    assert mapping["dynamic"] == "strict"  # the index took our template
    assert mapping["properties"]["prediction"]["properties"]["probability"]["type"] == "double"
    assert mapping["properties"]["prediction"]["properties"]["features"]["enabled"] is False


def test_an_unmapped_field_is_refused_by_the_strict_copy(indexed, opensearch):
    """The control for the test above: the store does enforce the mapping."""
    from opensearchpy import helpers

    doc = dict(indexed[0][0], model={"version": "1", "not_in_the_template": "x"})
    _, errors = helpers.bulk(opensearch, [{"_op_type": "create", "_index": INDEX, "_source": doc}],
                             refresh=True, raise_on_error=False)
    assert errors and "strict" in json.dumps(errors)


def test_query_back_by_model_version_time_range_and_text(indexed, opensearch, service_run):
    docs = indexed[0]
    champion = service_run.versions["champion"]
    expected = sum(1 for d in docs if d.get("model", {}).get("version") == champion)
    assert expected > 0 and _count(opensearch, {"term": {"model.version": champion}}) == expected
    predictions = sorted(d["@timestamp"] for d in docs if d["message"] == "prediction")
    first, last = predictions[0], predictions[-1]
    in_range = sum(1 for d in docs if first <= d["@timestamp"] <= last)
    assert _count(opensearch, {"range": {"@timestamp": {"gte": first, "lte": last}}}) == in_range
    refused = sum(1 for d in docs if d["message"] == "refused model version")
    assert refused > 0 and _count(opensearch, {"match": {"error.message": "sha256"}}) == refused
    assert _count(opensearch, {"match_phrase": {"message": "unhandled error"}}) == sum(
        1 for d in docs if d["message"] == "unhandled error")
    assert _count(opensearch, {"term": {"prediction.shadow": True}}) == sum(
        1 for d in docs if d.get("prediction", {}).get("shadow") is True)


def test_aggregations_by_class_variant_and_latency(indexed, opensearch):
    docs = indexed[0]
    body = {"size": 0, "query": {"term": {"log.logger": "credit_score.prediction"}},
            "aggs": {"class": {"terms": {"field": "prediction.class"}},
                     "variant": {"terms": {"field": "model.variant"}}}}
    aggs = opensearch.search(index=INDEX, body=body)["aggregations"]
    preds = [d for d in docs if d["log"]["logger"] == "credit_score.prediction"]
    assert {b["key"]: b["doc_count"] for b in aggs["class"]["buckets"]} == Counter(
        d["prediction"]["class"] for d in preds)
    assert {b["key"]: b["doc_count"] for b in aggs["variant"]["buckets"]} == Counter(
        d["model"]["variant"] for d in preds)
    body = {"size": 0, "query": {"term": {"log.logger": "credit_score.access"}},
            "aggs": {"p": {"percentiles": {"field": "event.duration", "percents": [50, 99]}}}}
    values = opensearch.search(index=INDEX, body=body)["aggregations"]["p"]["values"]
    durations = sorted(d["event"]["duration"] for d in docs if d["log"]["logger"] == "credit_score.access")
    assert durations[0] <= values["50.0"] <= values["99.0"] <= durations[-1]


# ---- the Kibana dashboard's visualizations, run as OpenSearch aggregations --------------------------------------
def _visualizations() -> list[tuple[str, dict, str]]:
    out = []
    for line in KIBANA.read_text().splitlines():
        obj = json.loads(line)
        if obj["type"] == "visualization":
            attrs = obj["attributes"]
            query = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]
            out.append((attrs["title"], json.loads(attrs["visState"]), query))
    return out


def _bucket_agg(agg: dict) -> dict:
    p = agg["params"]
    if agg["type"] == "date_histogram":
        return {"date_histogram": {"field": p["field"], "fixed_interval": "1m", "min_doc_count": 1}}
    if agg["type"] == "terms":
        return {"terms": {"field": p["field"], "size": p["size"]}}
    if agg["type"] == "filters":
        return {"filters": {"filters": {f["label"]: {"query_string": {"query": kql_to_lucene(f["input"]["query"])}}
                                        for f in p["filters"]}}}
    raise AssertionError(f"no translation for bucket aggregation {agg['type']}")


def _metric_aggs(metrics: list[dict]) -> dict:
    out = {}
    for m in metrics:
        if m["type"] == "percentiles":
            out[m["id"]] = {"percentiles": {"field": m["params"]["field"], "percents": m["params"]["percents"]}}
        elif m["type"] != "count":
            raise AssertionError(f"no translation for metric {m['type']}")
    return out


def _request(vis: dict, query: str) -> dict:
    aggs = [a for a in vis["aggs"] if a.get("enabled", True)]
    inner = _metric_aggs([a for a in aggs if a["schema"] == "metric"])
    for agg in reversed([a for a in aggs if a["schema"] != "metric"]):
        spec = _bucket_agg(agg)
        if inner:
            spec["aggs"] = inner
        inner = {agg["id"]: spec}
    return {"size": 0, "query": {"query_string": {"query": kql_to_lucene(query)}}, "aggs": inner}


def _buckets(result: dict) -> list[dict]:
    b = result["buckets"]
    return [dict(v, key=k) for k, v in b.items()] if isinstance(b, dict) else b


@pytest.mark.parametrize("title", [t for t, _, _ in _visualizations()])
def test_dashboard_visualization_returns_data(indexed, opensearch, title):
    _, vis, query = next(v for v in _visualizations() if v[0] == title)
    result = opensearch.search(index=INDEX, body=_request(vis, query))
    assert result["hits"]["total"]["value"] > 0, f"{title}: its query {query!r} matches nothing"
    bucket_aggs = [a for a in vis["aggs"] if a["schema"] != "metric"]
    level = [result["aggregations"]]
    for agg in bucket_aggs:
        buckets = [b for node in level for b in _buckets(node[agg["id"]])]
        assert any(b["doc_count"] > 0 for b in buckets), f"{title}: {agg['type']} on {agg['params']} is empty"
        if agg["type"] == "filters":  # each series of the panel has data in the driven run
            totals = Counter()
            for b in buckets:
                totals[b["key"]] += b["doc_count"]
            assert all(totals[f["label"]] > 0 for f in agg["params"]["filters"]), (title, dict(totals))
        level = buckets
    for m in vis["aggs"]:
        if m["type"] == "percentiles":
            values = [v for b in level for v in b[m["id"]]["values"].values()]
            assert values and all(v is not None for v in values), title
